//! Parsing and normalization of IAM JSON policy documents.
//!
//! Accepts what AWS accepts (string-or-array elements, a single Statement object, URL-encoded
//! text as IAM returns it) and rejects with a precise message what AWS would reject.

use serde_json::{Map, Value};

use super::PolicyError;

/// The policy language version; variables are literal text under 2008-10-17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PolicyVersion {
    #[serde(rename = "2008-10-17")]
    V2008,
    #[serde(rename = "2012-10-17")]
    V2012,
}

/// Where a policy is attached; it decides how Principal is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Attached to a user or role: Principal is ignored (the holder is the principal).
    Identity,
    /// A resource-based policy (bucket, role trust policy).
    Resource,
    /// An S3 access point policy (S3 reads `s3:DataAccessPointArn` there as not restricting).
    AccessPoint,
    /// A VPC endpoint policy: an account id as principal means that account's root user only.
    Endpoint,
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of a Principal / NotPrincipal element.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value")]
pub enum PrincipalEntry {
    /// `"Principal": "*"` — everyone, anonymous callers included.
    Everyone,
    /// `{"AWS": ...}`: `*`, an account id, an account root ARN, a user/role/session ARN or a
    /// unique id (`AROA...`) left behind by a deleted role.
    Aws(String),
    /// `{"Service": "sagemaker.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": ...}`.
    Federated(String),
    /// `{"CanonicalUser": ...}`.
    CanonicalUser(String),
}

/// A Principal or NotPrincipal element.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrincipalBlock {
    /// True for NotPrincipal.
    pub negated: bool,
    pub entries: Vec<PrincipalEntry>,
}

/// An Action/NotAction or Resource/NotResource element.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NameList {
    /// True for NotAction / NotResource.
    pub negated: bool,
    pub items: Vec<String>,
}

/// A condition operator, split into its parts (`ForAnyValue:StringLikeIfExists`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Operator {
    /// The operator as written.
    pub name: String,
    pub base: BaseOperator,
    pub set: Option<SetQualifier>,
    pub if_exists: bool,
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// The condition operators IAM documents.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
    /// Not an IAM operator: evaluation is Indeterminate.
    Unknown(String),
}

impl BaseOperator {
    fn from_name(name: &str) -> Self {
        use BaseOperator::*;
        match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            other => Unknown(other.to_string()),
        }
    }

    /// Negated operators are true when the value matches none of the policy's values, and
    /// true when the key is missing.
    pub fn is_negated(&self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

impl Operator {
    /// Splits `ForAllValues:StringLikeIfExists` into its parts.
    pub fn parse(name: &str) -> Self {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        // `Null` has no IfExists form.
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) if base != "Null" && !base.is_empty() => (true, base),
            _ => (false, rest),
        };
        Self {
            name: name.to_string(),
            base: BaseOperator::from_name(base),
            set,
            if_exists,
        }
    }
}

/// One operator + key + values entry of a Condition block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConditionClause {
    pub operator: Operator,
    /// The key as written (names are case-insensitive; see `key_lower`).
    pub key: String,
    #[serde(skip)]
    pub key_lower: String,
    pub values: Vec<String>,
}

/// One statement, normalized: every element is a list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    /// Position in the document (0-based).
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalBlock>,
    pub action: NameList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<NameList>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionClause>,
}

impl Statement {
    /// `Sid "x"` or `#3` — how messages name a statement.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(sid) if !sid.is_empty() => format!("statement {} (Sid \"{sid}\")", self.index),
            _ => format!("statement {}", self.index),
        }
    }
}

/// A parsed, normalized policy document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// What the document is (e.g. `vpce-123 endpoint policy`), for messages.
    #[serde(skip)]
    pub name: String,
    pub version: PolicyVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub statements: Vec<Statement>,
    /// Oddities AWS accepts and evaluates (e.g. an action that can never match).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Policy {
    /// Parses policy text: plain JSON, or URL-encoded JSON as IAM returns it.
    pub fn parse_text(name: &str, text: &str) -> Result<Self, PolicyError> {
        let trimmed = crate::input::strip_bom(text).trim();
        let decoded;
        let json_text = if trimmed.starts_with('{') {
            trimmed
        } else {
            // RFC 3986 percent-decoding; `+` stays a `+` (IAM does not encode spaces as `+`).
            decoded = percent_encoding::percent_decode_str(trimmed)
                .decode_utf8()
                .map_err(|e| {
                    PolicyError::new(
                        name,
                        None,
                        format!("not valid UTF-8 after URL-decoding: {e}"),
                    )
                })?
                .into_owned();
            decoded.trim()
        };
        let value: Value = crate::input::parse_json(json_text)
            .map_err(|e| PolicyError::new(name, None, format!("not valid JSON: {e}")))?;
        Self::from_value(name, &value)
    }

    /// Parses a policy from a JSON value.
    pub fn from_value(name: &str, value: &Value) -> Result<Self, PolicyError> {
        let object = value
            .as_object()
            .ok_or_else(|| PolicyError::new(name, None, "the document must be a JSON object"))?;
        let mut version = PolicyVersion::V2008;
        let mut id = None;
        let mut statements_value = None;
        for (key, v) in object {
            match key.as_str() {
                "Version" => {
                    version = match v.as_str() {
                        Some("2012-10-17") => PolicyVersion::V2012,
                        Some("2008-10-17") => PolicyVersion::V2008,
                        _ => {
                            return Err(PolicyError::new(
                                name,
                                None,
                                format!(
                                    "Version must be \"2012-10-17\" or \"2008-10-17\", found {v}"
                                ),
                            ));
                        }
                    }
                }
                "Id" => id = Some(string_of(name, None, "Id", v)?),
                "Statement" => statements_value = Some(v),
                other => {
                    return Err(PolicyError::new(
                        name,
                        None,
                        format!("unknown top-level element `{other}`"),
                    ));
                }
            }
        }
        let statements_value = statements_value
            .ok_or_else(|| PolicyError::new(name, None, "the Statement element is missing"))?;
        let raw_statements: Vec<&Value> = match statements_value {
            Value::Array(items) => items.iter().collect(),
            object @ Value::Object(_) => vec![object],
            _ => {
                return Err(PolicyError::new(
                    name,
                    None,
                    "Statement must be an object or an array of objects",
                ));
            }
        };
        let mut warnings = Vec::new();
        let statements = raw_statements
            .into_iter()
            .enumerate()
            .map(|(index, raw)| parse_statement(name, index, raw, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_string(),
            version,
            id,
            statements,
            warnings,
        })
    }

    /// A policy allowing every action on every resource — to everyone (`Principal: "*"`) when
    /// `anyone`, else as an identity policy: the stand-in for a layer a question does not test
    /// (the probes of the analyses, the hops of a path, the identity side of an access point
    /// request already checked).
    pub fn allow_all(name: &str, anyone: bool) -> Self {
        let everything = |item: &str| NameList {
            negated: false,
            items: vec![item.to_string()],
        };
        Self {
            name: name.to_string(),
            version: PolicyVersion::V2012,
            id: None,
            statements: vec![Statement {
                index: 0,
                sid: None,
                effect: Effect::Allow,
                principal: anyone.then(|| PrincipalBlock {
                    negated: false,
                    entries: vec![PrincipalEntry::Everyone],
                }),
                action: everything("*"),
                resource: Some(everything("*")),
                conditions: Vec::new(),
            }],
            warnings: Vec::new(),
        }
    }

    /// The first statement without a Principal or NotPrincipal. Resource-based policies (bucket,
    /// access point, role trust) and VPC endpoint policies must name one ("An endpoint policy
    /// ... must contain a Principal element", AWS PrivateLink guide, "Control access to VPC
    /// endpoints using endpoint policies"); AWS refuses such a document, so xscan does not
    /// guess whom it was meant for: evaluation answers Indeterminate and analyses `error`.
    pub fn statement_without_principal(&self, kind: PolicyKind) -> Option<&Statement> {
        if kind == PolicyKind::Identity {
            return None;
        }
        self.statements.iter().find(|s| s.principal.is_none())
    }

    /// The normalized form as JSON (every element a list, statements always an array).
    pub fn normalized_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn string_of(
    doc: &str,
    statement: Option<usize>,
    element: &str,
    v: &Value,
) -> Result<String, PolicyError> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        PolicyError::new(
            doc,
            statement,
            format!("{element} must be a string, found {v}"),
        )
    })
}

/// A string or a non-empty array of strings.
fn string_list(
    doc: &str,
    statement: usize,
    element: &str,
    v: &Value,
) -> Result<Vec<String>, PolicyError> {
    let list: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| string_of(doc, Some(statement), element, item))
            .collect::<Result<_, _>>()?,
        other => {
            return Err(PolicyError::new(
                doc,
                Some(statement),
                format!("{element} must be a string or an array of strings, found {other}"),
            ));
        }
    };
    if list.is_empty() {
        return Err(PolicyError::new(
            doc,
            Some(statement),
            format!("{element} must not be empty"),
        ));
    }
    Ok(list)
}

/// Condition values may be strings, numbers or booleans (`"Bool": {"aws:SecureTransport": false}`).
fn condition_values(
    doc: &str,
    statement: usize,
    key: &str,
    v: &Value,
) -> Result<Vec<String>, PolicyError> {
    let scalar = |item: &Value| match item {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(PolicyError::new(
            doc,
            Some(statement),
            format!(
                "condition key `{key}` has a value that is not a string, number or boolean: {other}"
            ),
        )),
    };
    let values = match v {
        Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
        other => vec![scalar(other)?],
    };
    if values.is_empty() {
        return Err(PolicyError::new(
            doc,
            Some(statement),
            format!("condition key `{key}` has no values"),
        ));
    }
    Ok(values)
}

fn parse_statement(
    doc: &str,
    index: usize,
    raw: &Value,
    warnings: &mut Vec<String>,
) -> Result<Statement, PolicyError> {
    let object: &Map<String, Value> = raw
        .as_object()
        .ok_or_else(|| PolicyError::new(doc, Some(index), "a statement must be a JSON object"))?;
    let mut sid = None;
    let mut effect = None;
    let mut principal = None;
    let mut action = None;
    let mut resource = None;
    let mut conditions = Vec::new();
    for (key, v) in object {
        match key.as_str() {
            "Sid" => sid = Some(string_of(doc, Some(index), "Sid", v)?),
            "Effect" => {
                effect = Some(match v.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => {
                        return Err(PolicyError::new(
                            doc,
                            Some(index),
                            format!("Effect must be \"Allow\" or \"Deny\", found {v}"),
                        ));
                    }
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(PolicyError::new(
                        doc,
                        Some(index),
                        "Principal and NotPrincipal cannot both be present",
                    ));
                }
                principal = Some(PrincipalBlock {
                    negated: key == "NotPrincipal",
                    entries: parse_principal(doc, index, key, v)?,
                });
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(PolicyError::new(
                        doc,
                        Some(index),
                        "Action and NotAction cannot both be present",
                    ));
                }
                let items = string_list(doc, index, key, v)?;
                for item in &items {
                    if item != "*" && !item.contains(':') {
                        warnings.push(format!(
                            "{doc}: statement {index}: action `{item}` has no service prefix and can never match"
                        ));
                    }
                }
                action = Some(NameList {
                    negated: key == "NotAction",
                    items,
                });
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(PolicyError::new(
                        doc,
                        Some(index),
                        "Resource and NotResource cannot both be present",
                    ));
                }
                resource = Some(NameList {
                    negated: key == "NotResource",
                    items: string_list(doc, index, key, v)?,
                });
            }
            "Condition" => conditions = parse_conditions(doc, index, v)?,
            other => {
                return Err(PolicyError::new(
                    doc,
                    Some(index),
                    format!("unknown statement element `{other}`"),
                ));
            }
        }
    }
    let effect = effect
        .ok_or_else(|| PolicyError::new(doc, Some(index), "the Effect element is missing"))?;
    let action = action.ok_or_else(|| {
        PolicyError::new(
            doc,
            Some(index),
            "the statement has neither Action nor NotAction",
        )
    })?;
    for clause in &conditions {
        if let BaseOperator::Unknown(op) = &clause.operator.base {
            warnings.push(format!(
                "{doc}: statement {index}: unknown condition operator `{op}`"
            ));
        }
    }
    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

fn parse_principal(
    doc: &str,
    index: usize,
    element: &str,
    v: &Value,
) -> Result<Vec<PrincipalEntry>, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec![PrincipalEntry::Everyone]),
        Value::Object(map) => {
            let mut entries = Vec::new();
            for (kind, values) in map {
                let values = string_list(doc, index, &format!("{element}.{kind}"), values)?;
                for value in values {
                    entries.push(match kind.as_str() {
                        "AWS" => PrincipalEntry::Aws(value),
                        "Service" => PrincipalEntry::Service(value),
                        "Federated" => PrincipalEntry::Federated(value),
                        "CanonicalUser" => PrincipalEntry::CanonicalUser(value),
                        other => {
                            return Err(PolicyError::new(
                                doc,
                                Some(index),
                                format!("unknown principal type `{other}` (expected AWS, Service, Federated or CanonicalUser)"),
                            ));
                        }
                    });
                }
            }
            if entries.is_empty() {
                return Err(PolicyError::new(
                    doc,
                    Some(index),
                    format!("{element} must not be empty"),
                ));
            }
            Ok(entries)
        }
        other => Err(PolicyError::new(
            doc,
            Some(index),
            format!("{element} must be \"*\" or an object such as {{\"AWS\": ...}}, found {other}"),
        )),
    }
}

fn parse_conditions(
    doc: &str,
    index: usize,
    v: &Value,
) -> Result<Vec<ConditionClause>, PolicyError> {
    let operators = v
        .as_object()
        .ok_or_else(|| PolicyError::new(doc, Some(index), "Condition must be an object"))?;
    let mut clauses = Vec::new();
    for (operator_name, keys) in operators {
        let operator = Operator::parse(operator_name);
        let keys = keys.as_object().ok_or_else(|| {
            PolicyError::new(
                doc,
                Some(index),
                format!("the condition operator `{operator_name}` must map keys to values"),
            )
        })?;
        for (key, values) in keys {
            clauses.push(ConditionClause {
                operator: operator.clone(),
                key: key.clone(),
                key_lower: key.to_lowercase(),
                values: condition_values(doc, index, key, values)?,
            });
        }
    }
    Ok(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_single_statement_and_strings() {
        let p = Policy::from_value(
            "t",
            &json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}),
        )
        .unwrap();
        assert_eq!(p.version, PolicyVersion::V2008);
        assert_eq!(p.statements.len(), 1);
        assert_eq!(p.statements[0].action.items, vec!["s3:GetObject"]);
    }

    #[test]
    fn url_encoded_documents_as_iam_returns_them() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22sagemaker.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let p = Policy::parse_text("trust", encoded).unwrap();
        assert_eq!(
            p.statements[0].principal.as_ref().unwrap().entries,
            vec![PrincipalEntry::Service("sagemaker.amazonaws.com".into())]
        );
    }

    #[test]
    fn plus_is_not_a_space_when_decoding() {
        let encoded = "%7B%22Statement%22%3A%7B%22Sid%22%3A%22a+b%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%7D%7D";
        let p = Policy::parse_text("x", encoded).unwrap();
        assert_eq!(p.statements[0].sid.as_deref(), Some("a+b"));
    }

    #[test]
    fn errors_name_document_statement_and_problem() {
        let err = Policy::from_value(
            "vpce-1 endpoint policy",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}, {"Effect": "Permit", "Action": "*"}]}),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("vpce-1 endpoint policy"), "{text}");
        assert!(text.contains("statement 1"), "{text}");
        assert!(text.contains("Effect"), "{text}");
        assert!(text.contains("help:"), "{text}");
    }

    #[test]
    fn rejects_what_aws_rejects() {
        for bad in [
            json!([]),
            json!({"Version": "2012-10-17"}),
            json!({"Version": "2020-01-01", "Statement": []}),
            json!({"Statement": [{"Effect": "Allow"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": "arn:aws:iam::1:root"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": {"Robot": "x"}}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": "x"}}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Extra": 1}]}),
        ] {
            assert!(Policy::from_value("bad", &bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn operator_parts() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists");
        assert_eq!(op.base, BaseOperator::StringLike);
        assert_eq!(op.set, Some(SetQualifier::ForAllValues));
        assert!(op.if_exists);
        let null = Operator::parse("Null");
        assert_eq!(null.base, BaseOperator::Null);
        assert!(!null.if_exists);
    }

    #[test]
    fn oddities_are_warnings_not_errors() {
        let p = Policy::from_value(
            "x",
            &json!({"Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*", "Condition": {"StringFuzzy": {"a": "b"}}}]}),
        )
        .unwrap();
        assert_eq!(p.warnings.len(), 2);
    }
}
