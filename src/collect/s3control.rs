//! S3 Control: the access points of a region with their public access block, policy and policy
//! status, and the account-level public access block.

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use crate::model::{
    CollectionErrors, CollectionGap, PolicyRecord, PublicAccessBlock, ResourceType, S3AccessPoint,
    S3AccountSettings,
};

use super::{Calls, Session, detail_gap, error_code, error_text, listing_gap};

/// The four flags, or a gap when the response lacks the configuration or one of them.
fn flags(
    c: Option<&aws_sdk_s3control::types::PublicAccessBlockConfiguration>,
) -> Result<PublicAccessBlock, String> {
    let c = c.ok_or_else(|| super::incomplete("no PublicAccessBlockConfiguration"))?;
    super::complete_flags([
        ("BlockPublicAcls", c.block_public_acls()),
        ("IgnorePublicAcls", c.ignore_public_acls()),
        ("BlockPublicPolicy", c.block_public_policy()),
        ("RestrictPublicBuckets", c.restrict_public_buckets()),
    ])
}

pub(crate) async fn access_points(
    sdk: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
    region: &str,
) -> (BTreeMap<String, S3AccessPoint>, Vec<CollectionGap>) {
    let client = session.s3control(sdk, calls);
    let mut listed = Vec::new();
    let mut pages = client
        .list_access_points()
        .account_id(account)
        .into_paginator()
        .send();
    loop {
        match calls.run("s3:ListAccessPoints", pages.next()).await {
            None => break,
            Some(Ok(page)) => listed.extend(page.access_point_list().iter().cloned()),
            Some(Err(e)) => {
                let gap = listing_gap(
                    account,
                    Some(region),
                    "s3control",
                    "ListAccessPoints",
                    &[ResourceType::S3AccessPoint],
                    error_text(&e),
                );
                return (BTreeMap::new(), vec![gap]);
            }
        }
    }
    let details = futures::future::join_all(listed.iter().map(|ap| {
        let client = client.clone();
        let name = ap.name().to_string();
        async move {
            tokio::join!(
                calls.run(
                    "s3:GetAccessPoint",
                    client
                        .get_access_point()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
                calls.run(
                    "s3:GetAccessPointPolicy",
                    client
                        .get_access_point_policy()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
                calls.run(
                    "s3:GetAccessPointPolicyStatus",
                    client
                        .get_access_point_policy_status()
                        .account_id(account)
                        .name(&name)
                        .send()
                ),
            )
        }
    }))
    .await;
    let mut out = BTreeMap::new();
    let mut gaps = Vec::new();
    for (ap, (detail, policy, status)) in listed.iter().zip(details) {
        let name = ap.name().to_string();
        let mut errors = CollectionErrors::new();
        let mut point = S3AccessPoint {
            name: name.clone(),
            arn: ap.access_point_arn().map_or_else(
                || format!("arn:aws:s3:{region}:{account}:accesspoint/{name}"),
                str::to_string,
            ),
            bucket: ap.bucket().to_string(),
            bucket_account: ap.bucket_account_id().map(str::to_string),
            network_origin: ap.network_origin().as_str().to_string(),
            vpc_id: ap.vpc_configuration().map(|v| v.vpc_id().to_string()),
            ..Default::default()
        };
        match detail
            .map_err(|e| error_text(&e))
            .and_then(|d| flags(d.public_access_block_configuration()))
        {
            Ok(block) => point.public_access_block = Some(block),
            Err(error) => {
                gaps.push(detail_gap(
                    account,
                    Some(region),
                    "s3control",
                    "GetAccessPoint",
                    &name,
                    error.clone(),
                ));
                errors.insert("public_access_block".into(), error);
            }
        }
        let policy = match policy {
            Ok(p) => p
                .policy()
                .map(|doc| PolicyRecord::from_raw(&format!("{name} access point policy"), doc))
                .map(Some)
                .ok_or_else(|| super::incomplete("GetAccessPointPolicy returned no Policy")),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchAccessPointPolicy") => Ok(None),
            Err(e) => Err(error_text(&e)),
        };
        match policy {
            Ok(p) => point.policy = p,
            Err(error) => {
                gaps.push(detail_gap(
                    account,
                    Some(region),
                    "s3control",
                    "GetAccessPointPolicy",
                    &name,
                    error.clone(),
                ));
                errors.insert("policy".into(), error);
            }
        }
        match status {
            Ok(s) => point.policy_status_is_public = s.policy_status().map(|p| p.is_public()),
            Err(e) if error_code(&e).as_deref() == Some("NoSuchAccessPointPolicy") => {}
            Err(e) => gaps.push(detail_gap(
                account,
                Some(region),
                "s3control",
                "GetAccessPointPolicyStatus",
                &name,
                error_text(&e),
            )),
        }
        point.collection_errors = errors;
        out.insert(name, point);
    }
    (out, gaps)
}

pub(crate) async fn account_settings(
    sdk: &SdkConfig,
    session: &Session,
    calls: &Calls,
    account: &str,
) -> (Option<S3AccountSettings>, Vec<CollectionGap>) {
    let client = session.s3control(sdk, calls);
    match calls
        .run(
            "s3:GetAccountPublicAccessBlock",
            client.get_public_access_block().account_id(account).send(),
        )
        .await
    {
        Ok(o) if flags(o.public_access_block_configuration()).is_ok() => (
            Some(S3AccountSettings {
                public_access_block: flags(o.public_access_block_configuration()).ok(),
                collection_errors: CollectionErrors::new(),
            }),
            Vec::new(),
        ),
        Err(e) if error_code(&e).as_deref() == Some("NoSuchPublicAccessBlockConfiguration") => {
            (Some(S3AccountSettings::default()), Vec::new())
        }
        other => {
            let error = match other {
                Ok(o) => flags(o.public_access_block_configuration())
                    .err()
                    .unwrap_or_default(),
                Err(e) => error_text(&e),
            };
            let gap = detail_gap(
                account,
                None,
                "s3control",
                "GetPublicAccessBlock",
                account,
                error.clone(),
            );
            (
                Some(S3AccountSettings {
                    public_access_block: None,
                    collection_errors: CollectionErrors::from([(
                        "public_access_block".to_string(),
                        error,
                    )]),
                }),
                vec![gap],
            )
        }
    }
}
