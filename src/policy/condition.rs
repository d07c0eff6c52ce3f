//! Condition operators, `...IfExists`, set qualifiers and policy variables, as the IAM User
//! Guide documents them ("IAM JSON policy elements: Condition operators", "Policy variables",
//! "Multivalued context keys").

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use ipnet::IpNet;

use super::document::{BaseOperator, ConditionClause, PolicyVersion, SetQualifier};
use super::wildcard::Pattern;

/// Three-valued result: a condition the engine cannot decide is `Unknown`, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown(String),
}

impl Truth {
    pub fn from_bool(b: bool) -> Self {
        if b { Truth::True } else { Truth::False }
    }

    /// Kleene AND.
    pub fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::Unknown(r), _) | (_, Truth::Unknown(r)) => Truth::Unknown(r),
            _ => Truth::True,
        }
    }
}

/// Keys AWS defines as multivalued: they are only compared through a set qualifier.
const MULTIVALUED_KEYS: &[&str] = &[
    "aws:tagkeys",
    "aws:principalorgpaths",
    "aws:calledvia",
    "aws:principalservicenameslist",
    "aws:resourceorgpaths",
    "s3:accesspointnetworkorigin-list",
];

/// The request's context keys. Key names are case-insensitive; values are kept as given.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    values: ContextMap<Vec<String>>,
    /// Keys the request carries with a value xscan does not know (the organization of a
    /// principal when the organization was not read), with why: a condition on one is Unknown.
    unknown: ContextMap<String>,
}

/// Context keys to what is known of them. Every request of a path analysis fills one, so it is
/// hashed with foldhash; no output depends on its order.
type ContextMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

impl RequestContext {
    /// Marks a key as carried with a value that is not known; a given value wins.
    pub fn set_unknown(&mut self, key: &str, reason: &str) {
        self.unknown.insert(key.to_lowercase(), reason.to_string());
    }

    /// Sets a key, replacing what was there.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_lowercase(), values);
    }

    /// Adds a value to a key (repeat for multivalued keys).
    pub fn add(&mut self, key: &str, value: &str) {
        self.values
            .entry(key.to_lowercase())
            .or_default()
            .push(value.to_string());
    }

    /// Sets a key unless the caller already gave it.
    pub fn set_default(&mut self, key: &str, value: &str) {
        self.values
            .entry(key.to_lowercase())
            .or_insert_with(|| vec![value.to_string()]);
    }

    /// The values of a key, if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_lowercase()).map(Vec::as_slice)
    }

    /// Whether the key is multivalued by AWS's definition (or was given more than once).
    pub fn is_multivalued(&self, key_lower: &str) -> bool {
        MULTIVALUED_KEYS.contains(&key_lower)
            || self.values.get(key_lower).is_some_and(|v| v.len() > 1)
    }

    /// All keys and values, sorted (for explanations).
    pub fn entries(&self) -> Vec<(String, Vec<String>)> {
        let mut all: Vec<_> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}

/// Expands policy variables in `text`. Under 2008-10-17 the text is taken as written.
/// Returns `None` when a variable has no value and no default: the element then matches nothing.
pub fn expand(
    text: &str,
    context: &RequestContext,
    version: PolicyVersion,
    wildcards: bool,
) -> Option<Pattern> {
    let mut pattern = Pattern::default();
    let push_text = |pattern: &mut Pattern, s: &str| {
        if wildcards {
            pattern.push_glob(s)
        } else {
            pattern.push_literal(s)
        }
    };
    if version == PolicyVersion::V2008 {
        push_text(&mut pattern, text);
        return Some(pattern);
    }
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        push_text(&mut pattern, &rest[..start]);
        let inner = rest[start + 2..start + len].trim();
        match inner {
            "*" | "?" | "$" => pattern.push_literal(inner),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((key, default)) => (key.trim(), Some(default.trim().trim_matches('\''))),
                    None => (inner, None),
                };
                match context.get(key) {
                    Some([single]) => pattern.push_literal(single),
                    _ => match default {
                        Some(default) => pattern.push_literal(default),
                        None => return None,
                    },
                }
            }
        }
        rest = &rest[start + len + 1..];
    }
    push_text(&mut pattern, rest);
    Some(pattern)
}

/// Evaluates one condition clause against the request context.
pub fn evaluate_clause(
    clause: &ConditionClause,
    context: &RequestContext,
    version: PolicyVersion,
) -> Truth {
    let operator = &clause.operator;
    if let BaseOperator::Unknown(name) = &operator.base {
        return Truth::Unknown(format!("unsupported condition operator `{name}`"));
    }
    let present = context.get(&clause.key_lower).filter(|v| !v.is_empty());
    if present.is_none()
        && let Some(reason) = context.unknown.get(&clause.key_lower)
    {
        return Truth::Unknown(format!("`{}` is not known: {reason}", clause.key_lower));
    }
    if operator.base == BaseOperator::Null {
        // "Null": {"key": "true"} is true when the key is absent.
        let want_absent = clause.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return Truth::from_bool(want_absent == present.is_none());
    }
    let Some(request_values) = present else {
        return Truth::from_bool(match operator.set {
            Some(SetQualifier::ForAllValues) => true,
            Some(SetQualifier::ForAnyValue) => false,
            None => operator.if_exists || operator.base.is_negated(),
        });
    };
    let negated = operator.base.is_negated();
    let mut unknown = None;
    // Does one request value satisfy the operator (for negated operators: match none)?
    let mut satisfies = |value: &str| -> bool {
        let mut any = false;
        for policy_value in &clause.values {
            match value_matches(&operator.base, value, policy_value, context, version) {
                Ok(true) => {
                    any = true;
                    break;
                }
                Ok(false) => {}
                Err(reason) => unknown = Some(reason),
            }
        }
        any != negated
    };
    let result = match operator.set {
        Some(SetQualifier::ForAllValues) => request_values.iter().all(|v| satisfies(v)),
        Some(SetQualifier::ForAnyValue) => request_values.iter().any(|v| satisfies(v)),
        // A single-valued operator over several values: positive operators need one value to
        // match; negated ones need every value to match none.
        None if negated => request_values.iter().all(|v| satisfies(v)),
        None => request_values.iter().any(|v| satisfies(v)),
    };
    // A value the engine could not compare can only add matches: a positive operator's
    // `true` and a negated operator's `false` stand; the other outcomes are unknown.
    match unknown {
        Some(reason) if result == negated => Truth::Unknown(reason),
        _ => Truth::from_bool(result),
    }
}

/// Positive comparison of one request value with one policy value (negation is the caller's).
fn value_matches(
    base: &BaseOperator,
    value: &str,
    policy_value: &str,
    context: &RequestContext,
    version: PolicyVersion,
) -> Result<bool, String> {
    use BaseOperator::*;
    let literal = || expand(policy_value, context, version, false).and_then(|p| p.as_literal());
    Ok(match base {
        StringEquals | StringNotEquals => literal().is_some_and(|p| p == value),
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
            literal().is_some_and(|p| p.to_lowercase() == value.to_lowercase())
        }
        StringLike | StringNotLike => {
            expand(policy_value, context, version, true).is_some_and(|p| p.matches(value))
        }
        NumericEquals | NumericNotEquals => {
            numeric(value, policy_value)?.is_some_and(|(a, b)| a == b)
        }
        NumericLessThan => numeric(value, policy_value)?.is_some_and(|(a, b)| a < b),
        NumericLessThanEquals => numeric(value, policy_value)?.is_some_and(|(a, b)| a <= b),
        NumericGreaterThan => numeric(value, policy_value)?.is_some_and(|(a, b)| a > b),
        NumericGreaterThanEquals => numeric(value, policy_value)?.is_some_and(|(a, b)| a >= b),
        DateEquals | DateNotEquals => dates(value, policy_value)?.is_some_and(|(a, b)| a == b),
        DateLessThan => dates(value, policy_value)?.is_some_and(|(a, b)| a < b),
        DateLessThanEquals => dates(value, policy_value)?.is_some_and(|(a, b)| a <= b),
        DateGreaterThan => dates(value, policy_value)?.is_some_and(|(a, b)| a > b),
        DateGreaterThanEquals => dates(value, policy_value)?.is_some_and(|(a, b)| a >= b),
        Bool => literal().is_some_and(|p| p.eq_ignore_ascii_case(value)),
        BinaryEquals => literal().is_some_and(|p| p == value),
        IpAddress | NotIpAddress => ip_in(value, policy_value)?,
        // ArnEquals and ArnLike behave alike: each of the six parts is matched on its own.
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
            let Some(pattern) =
                expand(policy_value, context, version, false).map(|p| p.to_string())
            else {
                return Ok(false);
            };
            arn_like(&pattern, value)
        }
        Null | Unknown(_) => false,
    })
}

fn numeric(value: &str, policy_value: &str) -> Result<Option<(f64, f64)>, String> {
    let policy: f64 = policy_value
        .trim()
        .parse()
        .map_err(|_| format!("`{policy_value}` is not a number"))?;
    Ok(value.trim().parse::<f64>().ok().map(|v| (v, policy)))
}

/// ISO 8601 date-times, plain dates, or epoch seconds.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
    }
    text.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// A request value and a policy value, both as instants.
type DatePair = (DateTime<Utc>, DateTime<Utc>);

fn dates(value: &str, policy_value: &str) -> Result<Option<DatePair>, String> {
    let policy =
        parse_date(policy_value).ok_or_else(|| format!("`{policy_value}` is not a date"))?;
    Ok(parse_date(value).map(|v| (v, policy)))
}

fn ip_in(value: &str, policy_value: &str) -> Result<bool, String> {
    let policy_value = policy_value.trim();
    let net: IpNet = match policy_value.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => policy_value
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{policy_value}` is not an IP address or CIDR block"))?,
    };
    Ok(value
        .trim()
        .parse::<IpAddr>()
        .is_ok_and(|ip| net.contains(&ip)))
}

/// ArnLike: the six colon-separated parts are matched separately (case-sensitive), so a `*` in
/// one part never spans a colon into the next; the resource part keeps its own colons.
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let pattern_parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn_parts: Vec<&str> = arn.splitn(6, ':').collect();
    if pattern_parts.len() != 6 || arn_parts.len() != 6 {
        // Not ARNs: only a lone `*` matches.
        return pattern == "*";
    }
    pattern_parts
        .iter()
        .zip(&arn_parts)
        .all(|(p, a)| Pattern::glob(p).matches(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::Operator;

    fn clause(op: &str, key: &str, values: &[&str]) -> ConditionClause {
        ConditionClause {
            operator: Operator::parse(op),
            key: key.into(),
            key_lower: key.to_lowercase(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> RequestContext {
        let mut c = RequestContext::default();
        for (k, v) in pairs {
            c.add(k, v);
        }
        c
    }

    fn eval(op: &str, key: &str, values: &[&str], context: &RequestContext) -> Truth {
        evaluate_clause(&clause(op, key, values), context, PolicyVersion::V2012)
    }

    // IAM User Guide, "Condition operators": a missing key makes a normal operator false,
    // a negated one true, and ...IfExists true.
    #[test]
    fn missing_key_rules() {
        let empty = RequestContext::default();
        assert_eq!(
            eval("StringEquals", "aws:SourceVpce", &["vpce-1"], &empty),
            Truth::False
        );
        assert_eq!(
            eval("StringNotEquals", "aws:SourceVpce", &["vpce-1"], &empty),
            Truth::True
        );
        assert_eq!(
            eval(
                "StringEqualsIfExists",
                "aws:SourceVpce",
                &["vpce-1"],
                &empty
            ),
            Truth::True
        );
        assert_eq!(
            eval("ForAllValues:StringEquals", "aws:TagKeys", &["a"], &empty),
            Truth::True
        );
        assert_eq!(
            eval("ForAnyValue:StringEquals", "aws:TagKeys", &["a"], &empty),
            Truth::False
        );
        assert_eq!(
            eval("Null", "aws:TokenIssueTime", &["true"], &empty),
            Truth::True
        );
        assert_eq!(
            eval("Null", "aws:TokenIssueTime", &["false"], &empty),
            Truth::False
        );
    }

    #[test]
    fn condition_key_names_are_case_insensitive_values_are_not() {
        let c = ctx(&[("AWS:ResourceAccount", "222222222222")]);
        assert_eq!(
            eval("StringEquals", "aws:resourceaccount", &["222222222222"], &c),
            Truth::True
        );
        let c = ctx(&[("aws:PrincipalTag/team", "Data")]);
        assert_eq!(
            eval("StringEquals", "aws:PrincipalTag/team", &["data"], &c),
            Truth::False
        );
        assert_eq!(
            eval(
                "StringEqualsIgnoreCase",
                "aws:PrincipalTag/team",
                &["data"],
                &c
            ),
            Truth::True
        );
    }

    // "Condition operators: StringEquals": a `*` is literal; only ...Like operators glob.
    #[test]
    fn star_is_literal_in_string_equals() {
        let c = ctx(&[("aws:ResourceAccount", "222222222222")]);
        assert_eq!(
            eval("StringEquals", "aws:ResourceAccount", &["*"], &c),
            Truth::False
        );
        assert_eq!(
            eval("StringLike", "aws:ResourceAccount", &["*"], &c),
            Truth::True
        );
    }

    // Negated operators with several values must match none of them.
    #[test]
    fn negated_operator_over_several_values() {
        let c = ctx(&[("aws:ResourceAccount", "333333333333")]);
        assert_eq!(
            eval(
                "StringNotEquals",
                "aws:ResourceAccount",
                &["222222222222", "333333333333"],
                &c
            ),
            Truth::False
        );
        let c = ctx(&[("aws:ResourceAccount", "444444444444")]);
        assert_eq!(
            eval(
                "StringNotEquals",
                "aws:ResourceAccount",
                &["222222222222", "333333333333"],
                &c
            ),
            Truth::True
        );
    }

    // "Multivalued context keys": ForAllValues / ForAnyValue.
    #[test]
    fn set_qualifiers() {
        let c = ctx(&[("aws:TagKeys", "env"), ("aws:TagKeys", "team")]);
        assert_eq!(
            eval(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["env", "team", "x"],
                &c
            ),
            Truth::True
        );
        assert_eq!(
            eval("ForAllValues:StringEquals", "aws:TagKeys", &["env"], &c),
            Truth::False
        );
        assert_eq!(
            eval("ForAnyValue:StringEquals", "aws:TagKeys", &["team"], &c),
            Truth::True
        );
        assert_eq!(
            eval("ForAnyValue:StringNotEquals", "aws:TagKeys", &["team"], &c),
            Truth::True
        );
        assert_eq!(
            eval("ForAllValues:StringNotEquals", "aws:TagKeys", &["team"], &c),
            Truth::False
        );
    }

    #[test]
    fn arn_like_matches_each_part_separately() {
        assert!(arn_like(
            "arn:aws:iam::*:role/x",
            "arn:aws:iam::111111111111:role/x"
        ));
        assert!(!arn_like(
            "arn:aws:iam::*",
            "arn:aws:iam::111111111111:role/x"
        ));
        assert!(arn_like(
            "arn:aws:s3:*:222222222222:accesspoint/*",
            "arn:aws:s3:us-east-1:222222222222:accesspoint/ap/object/k"
        ));
        assert!(!arn_like(
            "arn:aws:s3:*:222222222222:accesspoint/*",
            "arn:aws:s3:us-east-1:333333333333:accesspoint/ap"
        ));
        let c = ctx(&[("aws:PrincipalArn", "arn:aws:iam::111111111111:role/Exec")]);
        assert_eq!(
            eval(
                "ArnEquals",
                "aws:PrincipalArn",
                &["arn:aws:iam::111111111111:role/*"],
                &c
            ),
            Truth::True
        );
        assert_eq!(
            eval(
                "ArnNotLike",
                "aws:PrincipalArn",
                &["arn:aws:iam::111111111111:role/*"],
                &c
            ),
            Truth::False
        );
    }

    #[test]
    fn numeric_date_bool_ip() {
        let c = ctx(&[
            ("s3:max-keys", "10"),
            ("aws:CurrentTime", "2026-11-28T12:00:00Z"),
            ("aws:SecureTransport", "false"),
            ("aws:SourceIp", "203.0.113.7"),
        ]);
        assert_eq!(
            eval("NumericLessThanEquals", "s3:max-keys", &["10"], &c),
            Truth::True
        );
        assert_eq!(
            eval("NumericGreaterThan", "s3:max-keys", &["10"], &c),
            Truth::False
        );
        assert_eq!(
            eval("DateGreaterThan", "aws:CurrentTime", &["2026-01-01"], &c),
            Truth::True
        );
        assert_eq!(
            eval("DateLessThan", "aws:CurrentTime", &["1700000000"], &c),
            Truth::False
        );
        assert_eq!(
            eval("Bool", "aws:SecureTransport", &["false"], &c),
            Truth::True
        );
        assert_eq!(
            eval("Bool", "aws:SecureTransport", &["FALSE"], &c),
            Truth::True
        );
        assert_eq!(
            eval("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &c),
            Truth::True
        );
        assert_eq!(
            eval("NotIpAddress", "aws:SourceIp", &["203.0.113.0/24"], &c),
            Truth::False
        );
        assert_eq!(
            eval("IpAddress", "aws:SourceIp", &["203.0.113.7"], &c),
            Truth::True
        );
        assert!(matches!(
            eval("NumericEquals", "s3:max-keys", &["ten"], &c),
            Truth::Unknown(_)
        ));
        assert!(matches!(
            eval("StringSorta", "s3:max-keys", &["1"], &c),
            Truth::Unknown(_)
        ));
    }

    // IAM User Guide, "Policy variables": ${aws:username}, defaults and the ${*} escapes.
    #[test]
    fn policy_variables() {
        let c = ctx(&[("aws:username", "alice")]);
        let p = expand(
            "arn:aws:s3:::b/home/${aws:username}/*",
            &c,
            PolicyVersion::V2012,
            true,
        )
        .unwrap();
        assert!(p.matches("arn:aws:s3:::b/home/alice/x"));
        assert!(!p.matches("arn:aws:s3:::b/home/bob/x"));
        let p = expand("a${*}b", &c, PolicyVersion::V2012, true).unwrap();
        assert!(p.matches("a*b") && !p.matches("axb"));
        let p = expand(
            "${aws:PrincipalTag/team, 'none'}",
            &c,
            PolicyVersion::V2012,
            false,
        )
        .unwrap();
        assert_eq!(p.as_literal().unwrap(), "none");
        assert!(expand("${aws:userid}", &c, PolicyVersion::V2012, false).is_none());
        // Under 2008-10-17 variables are literal text.
        let p = expand("${aws:username}", &c, PolicyVersion::V2008, false).unwrap();
        assert_eq!(p.as_literal().unwrap(), "${aws:username}");
    }

    /// A key the request carries with a value xscan does not know (the principal's
    /// organization when the organization was not read) decides nothing: every operator on it,
    /// `Null` and `...IfExists` included, is Unknown; a given value wins.
    #[test]
    fn an_unknown_key_is_never_taken_as_absent() {
        let mut context = RequestContext::default();
        context.set_unknown("aws:PrincipalOrgID", "the organization was not collected");
        for (operator, value) in [
            ("StringEquals", "o-a1b2c3d4e5"),
            ("StringNotEquals", "o-a1b2c3d4e5"),
            ("StringNotEqualsIfExists", "o-a1b2c3d4e5"),
            ("Null", "true"),
        ] {
            let clause = clause(operator, "aws:PrincipalOrgID", &[value]);
            assert!(
                matches!(
                    evaluate_clause(&clause, &context, PolicyVersion::V2012),
                    Truth::Unknown(_)
                ),
                "{operator}"
            );
        }
        context.add("aws:PrincipalOrgID", "o-a1b2c3d4e5");
        let equals = clause("StringEquals", "aws:PrincipalOrgID", &["o-a1b2c3d4e5"]);
        assert_eq!(
            evaluate_clause(&equals, &context, PolicyVersion::V2012),
            Truth::True
        );
    }
}
