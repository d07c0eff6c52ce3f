//! Who makes a request, and whether a Principal / NotPrincipal entry names them.

use super::PolicyError;
use super::document::{PolicyKind, PrincipalEntry};

/// What kind of AWS identity a principal ARN names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsIdentity {
    Root,
    User {
        name: String,
    },
    Role {
        name: String,
    },
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    AssumedRole {
        role_name: String,
        session: String,
    },
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestPrincipal {
    /// An unauthenticated caller.
    Anonymous,
    /// An IAM identity.
    Aws {
        arn: String,
        partition: String,
        account: String,
        identity: AwsIdentity,
    },
    /// An AWS service such as `sagemaker.amazonaws.com`.
    Service { name: String },
}

impl RequestPrincipal {
    /// Parses `anonymous`, a service principal, a 12-digit account id (its root), or an IAM
    /// user, role, assumed-role session or root ARN.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("anonymous") {
            return Ok(Self::Anonymous);
        }
        if is_account_id(text) {
            return Ok(Self::Aws {
                arn: format!("arn:aws:iam::{text}:root"),
                partition: "aws".into(),
                account: text.into(),
                identity: AwsIdentity::Root,
            });
        }
        if !text.starts_with("arn:") && text.contains('.') && !text.contains(':') {
            return Ok(Self::Service {
                name: text.to_string(),
            });
        }
        let invalid = |why: &str| {
            PolicyError::input(format!(
                "`{text}` is not a principal: {why}\nhelp: use an IAM ARN (user, role, assumed-role session, root), a 12-digit account id, a service principal such as sagemaker.amazonaws.com, or `anonymous`"
            ))
        };
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [_, partition, service, _region, account, resource] = parts.as_slice() else {
            return Err(invalid("it does not have six colon-separated parts"));
        };
        if !is_account_id(account) {
            return Err(invalid("the account part is not a 12-digit account id"));
        }
        let last = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
        let identity = match (*service, *resource) {
            ("iam", "root") => AwsIdentity::Root,
            ("iam", r) if r.starts_with("user/") => AwsIdentity::User { name: last(r) },
            ("iam", r) if r.starts_with("role/") => AwsIdentity::Role { name: last(r) },
            ("sts", r) if r.starts_with("assumed-role/") => {
                let mut segments = r.splitn(3, '/').skip(1);
                match (segments.next(), segments.next()) {
                    (Some(role), Some(session)) => AwsIdentity::AssumedRole {
                        role_name: role.to_string(),
                        session: session.to_string(),
                    },
                    _ => {
                        return Err(invalid(
                            "an assumed-role ARN needs a role name and a session name",
                        ));
                    }
                }
            }
            _ => {
                return Err(invalid(
                    "only IAM users, roles, roots and STS assumed-role sessions are principals",
                ));
            }
        };
        Ok(Self::Aws {
            arn: text.to_string(),
            partition: partition.to_string(),
            account: account.to_string(),
            identity,
        })
    }

    /// The account of an IAM principal.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Aws { account, .. } => Some(account),
            _ => None,
        }
    }

    /// The ARN (or name) used for `aws:PrincipalArn`.
    pub fn principal_arn(&self) -> Option<String> {
        match self {
            Self::Aws {
                partition,
                account,
                identity: AwsIdentity::AssumedRole { role_name, .. },
                ..
            } => Some(format!("arn:{partition}:iam::{account}:role/{role_name}")),
            Self::Aws { arn, .. } => Some(arn.clone()),
            _ => None,
        }
    }

    /// Short description for explanations.
    pub fn describe(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".into(),
            Self::Aws { arn, .. } => arn.clone(),
            Self::Service { name } => name.clone(),
        }
    }
}

/// True for a 12-digit AWS account id.
pub use crate::input::is_account_id;

/// The account an `AWS` principal entry names as a whole (`111111111111` or its root ARN).
pub fn account_of_entry(entry: &str) -> Option<&str> {
    if is_account_id(entry) {
        return Some(entry);
    }
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam", "", account, "root"] if is_account_id(account) => Some(account),
        _ => None,
    }
}

/// How a principal entry matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalMatch {
    /// No match.
    No,
    /// Named directly (`*`, the ARN, the role of a session, the service).
    Direct,
    /// Matched as a member of a whole account named by id or root ARN: in a resource policy
    /// this delegates to the account, whose identity policies must also allow.
    Account,
    /// Named by its ARN in a gateway endpoint policy, where AWS documents only `*` (narrowed
    /// with `aws:PrincipalArn`) and the account forms (root user only): what AWS does with
    /// an IAM ARN there is not documented, so the statement's effect is unknown.
    Unknown,
}

/// Does `entry` name `principal`? `exact` is set for NotPrincipal, where a role does not
/// cover its sessions (IAM User Guide, "NotPrincipal").
pub fn entry_matches(
    entry: &PrincipalEntry,
    principal: &RequestPrincipal,
    kind: PolicyKind,
    exact: bool,
) -> PrincipalMatch {
    let direct = |b: bool| {
        if b {
            PrincipalMatch::Direct
        } else {
            PrincipalMatch::No
        }
    };
    match (entry, principal) {
        (PrincipalEntry::Everyone, _) => PrincipalMatch::Direct,
        (PrincipalEntry::Aws(value), _) if value == "*" => PrincipalMatch::Direct,
        (PrincipalEntry::Service(name), RequestPrincipal::Service { name: caller }) => {
            direct(name.eq_ignore_ascii_case(caller))
        }
        (
            PrincipalEntry::Aws(value),
            RequestPrincipal::Aws {
                arn,
                account,
                identity,
                ..
            },
        ) => {
            if let Some(entry_account) = account_of_entry(value) {
                if entry_account != account {
                    return PrincipalMatch::No;
                }
                // In a gateway endpoint policy an account id means that account's root user
                // only (AWS PrivateLink guide, "Control access to VPC endpoints").
                return match (kind, identity) {
                    (_, AwsIdentity::Root) => PrincipalMatch::Direct,
                    (PolicyKind::Endpoint, _) => PrincipalMatch::No,
                    _ => PrincipalMatch::Account,
                };
            }
            // Gateway endpoint policies: "you must use the aws:PrincipalArn condition key to
            // grant access to a principal" (AWS PrivateLink guide, "Principals for gateway
            // endpoints"); an ARN in Principal is not a documented form.
            let named = if kind == PolicyKind::Endpoint {
                PrincipalMatch::Unknown
            } else {
                PrincipalMatch::Direct
            };
            if value == arn {
                return named;
            }
            // A role ARN covers the role's sessions (the session ARN has no path).
            if let AwsIdentity::AssumedRole { role_name, .. } = identity
                && !exact
            {
                let parts: Vec<&str> = value.splitn(6, ':').collect();
                if let ["arn", _, "iam", "", entry_account, resource] = parts.as_slice()
                    && *entry_account == account.as_str()
                    && resource.starts_with("role/")
                    && resource.rsplit('/').next() == Some(role_name.as_str())
                {
                    return named;
                }
            }
            PrincipalMatch::No
        }
        _ => PrincipalMatch::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_principal_forms() {
        assert_eq!(
            RequestPrincipal::parse("anonymous").unwrap(),
            RequestPrincipal::Anonymous
        );
        assert!(matches!(
            RequestPrincipal::parse("sagemaker.amazonaws.com").unwrap(),
            RequestPrincipal::Service { .. }
        ));
        let session =
            RequestPrincipal::parse("arn:aws:sts::111111111111:assumed-role/Exec/SageMaker")
                .unwrap();
        assert_eq!(session.account(), Some("111111111111"));
        assert_eq!(
            session.principal_arn().unwrap(),
            "arn:aws:iam::111111111111:role/Exec"
        );
        assert!(RequestPrincipal::parse("arn:aws:s3:::bucket").is_err());
        assert!(RequestPrincipal::parse("bob").is_err());
    }

    #[test]
    fn role_covers_its_sessions_except_for_not_principal() {
        let session =
            RequestPrincipal::parse("arn:aws:sts::111111111111:assumed-role/Exec/s1").unwrap();
        let role = PrincipalEntry::Aws("arn:aws:iam::111111111111:role/team/Exec".into());
        assert_eq!(
            entry_matches(&role, &session, PolicyKind::Resource, false),
            PrincipalMatch::Direct
        );
        assert_eq!(
            entry_matches(&role, &session, PolicyKind::Resource, true),
            PrincipalMatch::No
        );
    }

    #[test]
    fn account_principal_means_root_only_in_endpoint_policies() {
        let role = RequestPrincipal::parse("arn:aws:iam::111111111111:role/Exec").unwrap();
        let account = PrincipalEntry::Aws("111111111111".into());
        assert_eq!(
            entry_matches(&account, &role, PolicyKind::Resource, false),
            PrincipalMatch::Account
        );
        assert_eq!(
            entry_matches(&account, &role, PolicyKind::Endpoint, false),
            PrincipalMatch::No
        );
        let root = RequestPrincipal::parse("111111111111").unwrap();
        assert_eq!(
            entry_matches(&account, &root, PolicyKind::Endpoint, false),
            PrincipalMatch::Direct
        );
        let unique_id = PrincipalEntry::Aws("AROAEXAMPLEID".into());
        assert_eq!(
            entry_matches(&unique_id, &role, PolicyKind::Resource, false),
            PrincipalMatch::No
        );
    }
}
