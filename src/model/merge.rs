//! Combining the snapshots of a sharded collection (`xscan collect --shard I/N`) into one, so
//! that one evaluation and one report cover the whole organization. Refuses shards that did not
//! come from the same configuration and rule pack, incomplete or repeated shard sets, and
//! accounts collected twice.

use std::collections::BTreeSet;

use super::{Provenance, Snapshot};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "nothing to merge\nhelp: pass the shard snapshots: xscan merge shard-*.json -o merged.json"
    )]
    Empty,
    #[error(
        "{path} was not written by `xscan collect --shard`: it records no shard\nhelp: merge the snapshots of one sharded collection"
    )]
    NotAShard { path: String },
    #[error(
        "{path} differs from {first} in {what} ({found} vs {expected})\nhelp: every shard must be collected with the same configuration (and account list), rule pack, regions and xscan version"
    )]
    Mismatch {
        path: String,
        first: String,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error(
        "shard set incomplete: {detail}\nhelp: collect every shard 0..N-1 once (--shard I/N) and merge them all"
    )]
    Shards { detail: String },
    #[error(
        "{path} records shard {index}/{count}, which is not a shard\nhelp: a shard is I/N with 0 <= I < N <= {MAX_SHARDS}; the file was edited or not written by `xscan collect --shard`"
    )]
    InvalidShard {
        path: String,
        index: usize,
        count: usize,
    },
    #[error(
        "{path}: the call count of {action} overflows when added to the other shards'\nhelp: the file was edited or not written by `xscan collect`"
    )]
    CallCount { path: String, action: String },
    #[error(
        "account {account} is in both {first} and {second}\nhelp: shards must come from one sharded collection"
    )]
    Overlap {
        account: String,
        first: String,
        second: String,
    },
}

/// The most shards one collection may be split into (`--shard I/N`, N at most this).
pub const MAX_SHARDS: usize = 10_000;

/// Merges `(path, snapshot)` shards; the result records the common provenance without a shard.
pub fn merge(shards: Vec<(String, Snapshot)>) -> Result<Snapshot, MergeError> {
    let mut iter = shards.into_iter();
    let (first_path, mut merged) = iter.next().ok_or(MergeError::Empty)?;
    let provenance = |path: &str, s: &Snapshot| -> Result<Provenance, MergeError> {
        match &s.metadata.provenance {
            Some(p) => match p.shard {
                Some(shard)
                    if shard.count == 0
                        || shard.count > MAX_SHARDS
                        || shard.index >= shard.count =>
                {
                    Err(MergeError::InvalidShard {
                        path: path.to_string(),
                        index: shard.index,
                        count: shard.count,
                    })
                }
                Some(_) => Ok(p.clone()),
                None => Err(MergeError::NotAShard {
                    path: path.to_string(),
                }),
            },
            None => Err(MergeError::NotAShard {
                path: path.to_string(),
            }),
        }
    };
    let base = provenance(&first_path, &merged)?;
    let count = base.shard.map_or(1, |s| s.count);
    let mut seen: BTreeSet<usize> = base.shard.map(|s| s.index).into_iter().collect();
    let mut owner: std::collections::BTreeMap<String, String> = merged
        .accounts
        .keys()
        .map(|a| (a.clone(), first_path.clone()))
        .collect();
    for (path, shard) in iter {
        let p = provenance(&path, &shard)?;
        let mismatch = |what, found: String, expected: String| MergeError::Mismatch {
            path: path.clone(),
            first: first_path.clone(),
            what,
            found,
            expected,
        };
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
        if p.config_sha256 != base.config_sha256 {
            return Err(mismatch(
                "configuration",
                opt(&p.config_sha256),
                opt(&base.config_sha256),
            ));
        }
        if p.rule_pack_sha256 != base.rule_pack_sha256 {
            return Err(mismatch(
                "rule pack",
                p.rule_pack_sha256.clone(),
                base.rule_pack_sha256.clone(),
            ));
        }
        let shard_info = p.shard.unwrap_or_default();
        if shard_info.count != count {
            return Err(mismatch(
                "shard count",
                shard_info.count.to_string(),
                count.to_string(),
            ));
        }
        if shard.metadata.regions != merged.metadata.regions {
            return Err(mismatch(
                "regions",
                shard.metadata.regions.join(","),
                merged.metadata.regions.join(","),
            ));
        }
        if shard.metadata.tool_version != merged.metadata.tool_version {
            return Err(mismatch(
                "xscan version",
                shard.metadata.tool_version.clone(),
                merged.metadata.tool_version.clone(),
            ));
        }
        // Every shard read the organization (and discovered the scope from it): a shard that
        // saw another one would split a scope that is not the same.
        if shard.organization != merged.organization {
            let describe = |o: &Option<crate::model::OrganizationSnapshot>| match o {
                None => "none".to_string(),
                Some(o) => format!(
                    "{} ({} accounts, {} policies)",
                    o.id.as_deref().unwrap_or("unknown"),
                    o.accounts.len(),
                    o.policies.len()
                ),
            };
            return Err(mismatch(
                "organization (it changed between the shards: collect them again)",
                describe(&shard.organization),
                describe(&merged.organization),
            ));
        }
        if !seen.insert(shard_info.index) {
            return Err(MergeError::Shards {
                detail: format!("shard {}/{count} given twice ({path})", shard_info.index),
            });
        }
        let m = &mut merged.metadata;
        m.started_at = m.started_at.min(shard.metadata.started_at);
        m.finished_at = m.finished_at.max(shard.metadata.finished_at);
        m.caller_identities.extend(shard.metadata.caller_identities);
        m.collection_gaps.extend(shard.metadata.collection_gaps);
        for (action, n) in shard.metadata.api_calls {
            let total = m.api_calls.entry(action.clone()).or_default();
            *total = total.checked_add(n).ok_or_else(|| MergeError::CallCount {
                path: path.clone(),
                action,
            })?;
        }
        for (account, counts) in shard.metadata.retries {
            let total = m.retries.entry(account).or_default();
            total.retried = total.retried.saturating_add(counts.retried);
            total.throttled = total.throttled.saturating_add(counts.throttled);
        }
        for (id, account) in shard.accounts {
            if let Some(first) = owner.get(&id) {
                return Err(MergeError::Overlap {
                    account: id,
                    first: first.clone(),
                    second: path.clone(),
                });
            }
            owner.insert(id.clone(), path.clone());
            merged.accounts.insert(id, account);
        }
    }
    if seen.len() < count {
        // Name the first few missing shards only: the count is bounded, the message too.
        let missing: Vec<String> = (0..count)
            .filter(|i| !seen.contains(i))
            .take(10)
            .map(|i| i.to_string())
            .collect();
        let more = count - seen.len() - missing.len();
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(MergeError::Shards {
            detail: format!("shard(s) {}{more} of {count} missing", missing.join(", ")),
        });
    }
    // The same order a single collection writes; the organization's gaps, met by every
    // shard, once.
    merged.metadata.sort_gaps();
    merged.metadata.collection_gaps.dedup();
    merged.metadata.provenance = Some(Provenance {
        shard: None,
        ..base
    });
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountSnapshot, Shard};

    fn shard(index: usize, count: usize, account: &str, config: &str) -> (String, Snapshot) {
        let mut s = Snapshot::new(vec!["us-east-1".into()]);
        s.metadata.provenance = Some(Provenance {
            config_sha256: Some(config.into()),
            rule_pack_sha256: "pack".into(),
            shard: Some(Shard { index, count }),
        });
        s.accounts
            .insert(account.into(), AccountSnapshot::default());
        s.metadata.api_calls.insert("ec2:DescribeVpcs".into(), 2);
        (format!("shard-{index}.json"), s)
    }

    #[test]
    fn merges_a_complete_set_and_refuses_the_rest() {
        let merged = merge(vec![
            shard(1, 2, "222222222222", "c"),
            shard(0, 2, "111111111111", "c"),
        ])
        .unwrap();
        assert_eq!(merged.accounts.len(), 2);
        assert_eq!(merged.metadata.api_calls["ec2:DescribeVpcs"], 4);
        assert_eq!(merged.metadata.provenance.unwrap().shard, None);

        let err = merge(vec![shard(0, 2, "111111111111", "c")]).unwrap_err();
        assert!(err.to_string().contains("shard(s) 1 of 2 missing"), "{err}");
        let err = merge(vec![
            shard(0, 2, "111111111111", "c"),
            shard(1, 2, "222222222222", "other"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("in configuration"), "{err}");
        let err = merge(vec![
            shard(0, 2, "111111111111", "c"),
            shard(0, 2, "222222222222", "c"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        // The organization every shard read must be the same one; its gaps are kept once.
        let with_org = |index: usize, account: &str, policies: usize| {
            let (path, mut s) = shard(index, 2, account, "c");
            let mut org = crate::model::OrganizationSnapshot {
                id: Some("o-a1b2c3d4e5".into()),
                ..Default::default()
            };
            for p in 0..policies {
                org.policies.insert(
                    format!("p-{p}"),
                    crate::model::OrganizationPolicy {
                        name: format!("scp-{p}"),
                        policy_type: crate::model::OrganizationPolicyType::ServiceControlPolicy,
                        aws_managed: false,
                        policy: crate::model::PolicyRecord::default(),
                        targets: Vec::new(),
                    },
                );
            }
            s.organization = Some(org);
            s.metadata
                .collection_gaps
                .push(crate::model::CollectionGap {
                    account: "999999999999".into(),
                    region: None,
                    service: "organizations".into(),
                    api_call: "ListTagsForResource".into(),
                    resource_types: Vec::new(),
                    resource_id: Some("tags".into()),
                    error: "AccessDeniedException".into(),
                });
            (path, s)
        };
        let merged = merge(vec![
            with_org(0, "111111111111", 1),
            with_org(1, "222222222222", 1),
        ])
        .unwrap();
        assert!(merged.organization.is_some());
        assert_eq!(merged.metadata.collection_gaps.len(), 1);
        let err = merge(vec![
            with_org(0, "111111111111", 1),
            with_org(1, "222222222222", 2),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("organization"), "{err}");
        let err = merge(vec![
            shard(0, 2, "111111111111", "c"),
            shard(1, 2, "111111111111", "c"),
        ])
        .unwrap_err();
        assert!(matches!(err, MergeError::Overlap { .. }), "{err}");
        let mut unsharded = shard(0, 1, "111111111111", "c");
        unsharded.1.metadata.provenance = None;
        assert!(matches!(
            merge(vec![unsharded]).unwrap_err(),
            MergeError::NotAShard { .. }
        ));
    }

    #[test]
    fn hostile_shard_records_are_refused_quickly() {
        let start = std::time::Instant::now();
        for (index, count) in [(0, 1_000_000_000_000), (0, 0), (3, 2), (2, 2)] {
            let err = merge(vec![shard(index, count, "111111111111", "c")]).unwrap_err();
            assert!(
                matches!(err, MergeError::InvalidShard { .. }),
                "{index}/{count}: {err}"
            );
        }
        let err = merge(vec![shard(0, MAX_SHARDS, "111111111111", "c")]).unwrap_err();
        assert!(
            err.to_string().contains("and 9989 more of 10000 missing"),
            "{err}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(5));

        let mut huge = shard(1, 2, "222222222222", "c");
        huge.1
            .metadata
            .api_calls
            .insert("ec2:DescribeVpcs".into(), u64::MAX);
        let err = merge(vec![shard(0, 2, "111111111111", "c"), huge]).unwrap_err();
        assert!(matches!(err, MergeError::CallCount { .. }), "{err}");
    }

    #[test]
    fn shard_specs_parse() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
