//! S3 buckets of the data account: policy, public access block, encryption, ownership controls,
//! versioning and policy status. "Not configured" answers are recorded as `null`, distinct
//! from errors.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;

use crate::model::{
    BucketEncryption, CollectionErrors, CollectionGap, PolicyRecord, PublicAccessBlock, S3Bucket,
};

use super::{Calls, Session, detail_gap, error_code, error_text};

/// Error codes that mean "not configured", per call.
const NOT_CONFIGURED: &[&str] = &[
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "OwnershipControlsNotFoundError",
];

/// Turns a call result into Ok(Some), Ok(None) for "not configured", or Err(text).
fn settle<T, E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error>(
    result: Result<T, E>,
) -> Result<Option<T>, String> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if error_code(&e).is_some_and(|c| NOT_CONFIGURED.contains(&c.as_str())) => Ok(None),
        Err(e) => Err(error_text(&e)),
    }
}

/// The bucket's four Block Public Access flags, or a gap when the answer lacks one.
fn block_of(
    o: &aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput,
) -> Result<PublicAccessBlock, String> {
    let c = o
        .public_access_block_configuration()
        .ok_or_else(|| super::incomplete("no PublicAccessBlockConfiguration"))?;
    super::complete_flags([
        ("BlockPublicAcls", c.block_public_acls()),
        ("IgnorePublicAcls", c.ignore_public_acls()),
        ("BlockPublicPolicy", c.block_public_policy()),
        ("RestrictPublicBuckets", c.restrict_public_buckets()),
    ])
}

/// The default encryption, `None` for a rule without a default (a bucket-key-only rule), or a
/// gap when the answer has no rule at all.
fn encryption_of(
    o: &aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput,
) -> Result<Option<BucketEncryption>, String> {
    let rule = o
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .ok_or_else(|| super::incomplete("GetBucketEncryption returned no rule"))?;
    Ok(rule
        .apply_server_side_encryption_by_default()
        .map(|default| BucketEncryption {
            algorithm: default.sse_algorithm().as_str().to_string(),
            kms_key_id: default.kms_master_key_id().map(str::to_string),
            bucket_key_enabled: rule.bucket_key_enabled().unwrap_or(false),
        }))
}

pub(crate) async fn buckets(
    home: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
    names: &BTreeSet<String>,
) -> (BTreeMap<String, S3Bucket>, Vec<CollectionGap>) {
    let results = futures::future::join_all(
        names
            .iter()
            .map(|name| bucket(home, session, calls, account, name)),
    )
    .await;
    let mut buckets = BTreeMap::new();
    let mut gaps = Vec::new();
    for (bucket, bucket_gaps) in results {
        gaps.extend(bucket_gaps);
        buckets.insert(bucket.name.clone(), bucket);
    }
    (buckets, gaps)
}

async fn bucket(
    home: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
    name: &str,
) -> (S3Bucket, Vec<CollectionGap>) {
    let mut gaps = Vec::new();
    let mut errors = CollectionErrors::new();
    let mut bucket = S3Bucket {
        name: name.to_string(),
        arn: format!("arn:aws:s3:::{name}"),
        owner_account: account.to_string(),
        ..Default::default()
    };
    // The bucket's region decides which endpoint answers its configuration calls.
    let home_client = session.s3(home, calls);
    let location = calls
        .run(
            "s3:GetBucketLocation",
            home_client
                .get_bucket_location()
                .bucket(name)
                .expected_bucket_owner(account)
                .send(),
        )
        .await;
    let region = match location {
        Ok(output) => match output.location_constraint().map(|c| c.as_str().to_string()) {
            None => "us-east-1".to_string(),
            Some(c) if c.is_empty() => "us-east-1".to_string(),
            Some(c) if c == "EU" => "eu-west-1".to_string(),
            Some(c) => c,
        },
        Err(e) => {
            let error = error_text(&e);
            gaps.push(detail_gap(
                account,
                None,
                "s3",
                "GetBucketLocation",
                name,
                error.clone(),
            ));
            for field in [
                "policy",
                "public_access_block",
                "encryption",
                "object_ownership",
                "versioning",
            ] {
                errors.insert(field.into(), error.clone());
            }
            bucket.collection_errors = errors;
            return (bucket, gaps);
        }
    };
    bucket.region = Some(region.clone());
    let client = session.s3(&session.regional(home, &region), calls);
    let (policy, block, encryption, ownership, versioning, status) = tokio::join!(
        calls.run(
            "s3:GetBucketPolicy",
            client
                .get_bucket_policy()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
        calls.run(
            "s3:GetBucketPublicAccessBlock",
            client
                .get_public_access_block()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
        calls.run(
            "s3:GetEncryptionConfiguration",
            client
                .get_bucket_encryption()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
        calls.run(
            "s3:GetBucketOwnershipControls",
            client
                .get_bucket_ownership_controls()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
        calls.run(
            "s3:GetBucketVersioning",
            client
                .get_bucket_versioning()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
        calls.run(
            "s3:GetBucketPolicyStatus",
            client
                .get_bucket_policy_status()
                .bucket(name)
                .expected_bucket_owner(account)
                .send()
        ),
    );
    let mut record = |field: &str, api: &str, error: String| {
        gaps.push(detail_gap(
            account,
            Some(&region),
            "s3",
            api,
            name,
            error.clone(),
        ));
        errors.insert(field.to_string(), error);
    };
    // A successful answer that lacks what AWS always sends is a gap, not "not configured".
    let policy = settle(policy).and_then(|o| {
        o.map(|o| {
            o.policy()
                .map(|doc| PolicyRecord::from_raw(&format!("{name} bucket policy"), doc))
                .ok_or_else(|| super::incomplete("GetBucketPolicy returned no Policy"))
        })
        .transpose()
    });
    match policy {
        Ok(p) => bucket.policy = p,
        Err(e) => record("policy", "GetBucketPolicy", e),
    }
    match settle(block).and_then(|o| o.map(|o| block_of(&o)).transpose()) {
        Ok(b) => bucket.public_access_block = b,
        Err(e) => record("public_access_block", "GetPublicAccessBlock", e),
    }
    match settle(encryption).and_then(|o| o.map(|o| encryption_of(&o)).transpose()) {
        Ok(enc) => bucket.encryption = enc.flatten(),
        Err(e) => record("encryption", "GetBucketEncryption", e),
    }
    let ownership = settle(ownership).and_then(|o| {
        o.map(|o| {
            o.ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_string())
                .ok_or_else(|| super::incomplete("GetBucketOwnershipControls returned no rule"))
        })
        .transpose()
    });
    match ownership {
        Ok(o) => bucket.object_ownership = o,
        Err(e) => record("object_ownership", "GetBucketOwnershipControls", e),
    }
    match settle(versioning) {
        Ok(v) => bucket.versioning = v.and_then(|o| o.status().map(|s| s.as_str().to_string())),
        Err(e) => record("versioning", "GetBucketVersioning", e),
    }
    // Informational only: a failure here is logged as a gap but decides no rule.
    match settle(status) {
        Ok(s) => {
            bucket.policy_status_is_public =
                s.and_then(|o| o.policy_status().and_then(|p| p.is_public()))
        }
        Err(e) => gaps.push(detail_gap(
            account,
            Some(&region),
            "s3",
            "GetBucketPolicyStatus",
            name,
            e,
        )),
    }
    bucket.collection_errors = errors;
    (bucket, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;
    use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;
    use aws_sdk_s3::types::PublicAccessBlockConfiguration;

    // A body cut short can parse: a flag missing is not `false` (issue "Thousands of accounts",
    // item 2), and a configuration missing is not "not configured".
    #[test]
    fn incomplete_answers_are_gaps_not_defaults() {
        let full = GetPublicAccessBlockOutput::builder()
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(false)
                    .build(),
            )
            .build();
        let block = block_of(&full).unwrap();
        assert!(block.block_public_acls && !block.restrict_public_buckets);
        let cut = GetPublicAccessBlockOutput::builder()
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .build(),
            )
            .build();
        let error = block_of(&cut).unwrap_err();
        assert!(
            error.contains("BlockPublicPolicy, RestrictPublicBuckets"),
            "{error}"
        );
        assert!(block_of(&GetPublicAccessBlockOutput::builder().build()).is_err());
        assert!(encryption_of(&GetBucketEncryptionOutput::builder().build()).is_err());
    }
}
