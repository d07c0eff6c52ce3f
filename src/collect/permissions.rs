//! The exact IAM permissions the collector uses: every call goes through `Calls::run` (in
//! `collect`) with one of these actions (a debug assertion and a test hold it to this list),
//! and every one is a read.

use serde_json::{Value, json};

/// Every IAM action the collector calls.
pub const ACTIONS: &[&str] = &[
    "ec2:DescribeManagedPrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "s3:GetAccessPoint",
    "s3:GetAccessPointPolicy",
    "s3:GetAccessPointPolicyStatus",
    "s3:GetAccountPublicAccessBlock",
    "s3:GetBucketLocation",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:ListAccessPoints",
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:ListNotebookInstances",
    "sts:GetCallerIdentity",
];

/// Every IAM action the collector calls in the management account or delegated administrator
/// that reads the organization (`organization:` in the config).
pub const ORGANIZATION_ACTIONS: &[&str] = &[
    "organizations:DescribeOrganization",
    "organizations:DescribePolicy",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListPolicies",
    "organizations:ListRoots",
    "organizations:ListTagsForResource",
    "organizations:ListTargetsForPolicy",
];

/// The policy for the identity that reads the organization.
pub fn organization_reader_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "XscanReadOrganization",
            "Effect": "Allow",
            "Action": ORGANIZATION_ACTIONS,
            "Resource": "*"
        }]
    })
}

/// The policy to attach to the audit role in every account in scope.
pub fn audit_role_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "XscanReadOnly",
            "Effect": "Allow",
            "Action": ACTIONS,
            "Resource": "*"
        }]
    })
}

/// The policy for the starting identity: assume the audit roles.
pub fn starting_identity_policy(role_arns: &[String]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "XscanAssumeAuditRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": if role_arns.is_empty() { json!("arn:aws:iam::*:role/xscan-audit") } else { json!(role_arns) }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_a_read() {
        for action in ACTIONS.iter().chain(ORGANIZATION_ACTIONS) {
            let name = action.split(':').nth(1).unwrap();
            assert!(
                name.starts_with("Get") || name.starts_with("List") || name.starts_with("Describe"),
                "{action} is not a read"
            );
        }
        for list in [ACTIONS, ORGANIZATION_ACTIONS] {
            let mut sorted = list.to_vec();
            sorted.sort();
            assert_eq!(sorted, list);
        }
    }
}
