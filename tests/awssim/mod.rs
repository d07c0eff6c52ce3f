//! A simulated AWS for collection at scale: a loopback HTTP server that answers the calls xscan
//! and Cloud Custodian make from exchanges recorded once from moto for a template estate
//! (`bench/record.sh`: consumer 111111111111, data 222222222222), replayed for any number of
//! accounts with the account ids and the EC2 resource ids substituted. On top, from a seeded
//! configuration: per-call latency (fixed + jitter), per-account per-service token-bucket
//! throttling with AWS's error shapes, faults (500, 503, connections reset before a response,
//! responses slower than the call timeout, truncated bodies, AccessDenied on chosen actions),
//! and a log of every action asked for, so a test can prove what went over the wire.
//!
//! Shared by the integration tests (`tests/it/simulated.rs`) and the scale benchmark
//! (`benches/awssim.rs`, `bench/scale.sh`). Standard library threads, one per connection: the
//! server does a few string substitutions per call and sleeps the latency, which keeps it far
//! above the client's rate on this machine (see bench/RESULTS.md for the measured capacity).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The accounts the recording was made in.
pub const TEMPLATE_CONSUMER: &str = "111111111111";
pub const TEMPLATE_DATA: &str = "222222222222";
/// The recording committed with the repository.
pub const RECORDING: &str = "tests/data/awssim/recording.jsonl";
/// One data account serves this many consumer accounts.
pub const CONSUMERS_PER_DATA: usize = 10;
/// The account of credentials the simulator did not issue (the starting identity).
pub const CALLER_ACCOUNT: &str = "123456789012";
/// The role the simulated estate lets the scanner assume in every account.
pub const AUDIT_ROLE: &str = "xscan-audit";

/// Consumer account `i` (0-based).
pub fn consumer(i: usize) -> String {
    format!("71{i:010}")
}

/// Data account `j` (0-based).
pub fn data(j: usize) -> String {
    format!("72{j:010}")
}

/// How many data accounts serve `consumers` consumer accounts.
pub fn data_accounts(consumers: usize) -> usize {
    consumers.div_ceil(CONSUMERS_PER_DATA)
}

/// A fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 500 in the service's error shape.
    Internal,
    /// 503 in the service's error shape.
    Unavailable,
    /// The connection is closed after the request, with no response.
    Reset,
    /// The response comes after `slow` (longer than the client's call timeout).
    Slow,
    /// Half the body, with a Content-Length that matches the half.
    TruncatedMatching,
    /// Half the body, then the connection closes (Content-Length says the whole).
    TruncatedShort,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Internal,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Slow,
        Fault::TruncatedMatching,
        Fault::TruncatedShort,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Internal => "500",
            Fault::Unavailable => "503",
            Fault::Reset => "reset",
            Fault::Slow => "slow",
            Fault::TruncatedMatching => "truncated",
            Fault::TruncatedShort => "cut",
        }
    }

    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A token bucket's size and refill rate (tokens per second).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub burst: f64,
    pub refill: f64,
}

/// Per-account, per-service request limits. EC2's are documented (non-mutating actions: a
/// bucket of 100, refilled at 20 per second, https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html)
/// and STS's (600 requests per second per account and region,
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html); IAM, SageMaker
/// and S3 Control do not publish theirs, and the figures here are conservative stand-ins.
pub fn aws_limits() -> BTreeMap<String, Limit> {
    [
        ("ec2", 100.0, 20.0),
        ("sts", 600.0, 600.0),
        ("iam", 20.0, 10.0),
        ("sagemaker", 20.0, 10.0),
        ("s3control", 20.0, 10.0),
        // 5,500 GET requests per second per prefix.
        ("s3", 5_500.0, 5_500.0),
        ("organizations", 20.0, 10.0),
    ]
    .into_iter()
    .map(|(service, burst, refill)| (service.to_string(), Limit { burst, refill }))
    .collect()
}

/// What the simulator does besides answering.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Consumer accounts (data accounts follow: one per `CONSUMERS_PER_DATA`).
    pub consumers: usize,
    pub latency: Duration,
    pub jitter: Duration,
    pub seed: u64,
    /// Token buckets per service; a service not listed is not throttled.
    pub limits: BTreeMap<String, Limit>,
    /// One request in `fault_one_in` gets one of `faults` (0: none).
    pub fault_one_in: u64,
    pub faults: Vec<Fault>,
    /// How long a `Slow` response takes.
    pub slow: Duration,
    /// Actions (`sagemaker:DescribeNotebookInstance`) always answered with AccessDenied.
    pub deny: BTreeSet<String>,
    /// The first N requests of an action are throttled, whatever the buckets hold: a
    /// throttling the client cannot wait out by chance.
    pub throttle_first: BTreeMap<String, u64>,
}

impl Settings {
    pub fn new(consumers: usize) -> Self {
        Self {
            consumers,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            seed: 1,
            limits: BTreeMap::new(),
            fault_one_in: 0,
            faults: Vec::new(),
            slow: Duration::from_secs(5),
            deny: BTreeSet::new(),
            throttle_first: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Caller,
    Consumer,
    Data,
}

/// Where an account sits in the estate: what it is, and the consumer/data pair whose template
/// ids it is substituted with.
struct Place {
    kind: Kind,
    consumer: String,
    data: String,
}

/// A recorded response.
struct Recorded {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// One request as read from the wire.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What the simulator saw, for the benchmark's figures and the tests' assertions.
#[derive(Default)]
struct Tally {
    requests: u64,
    actions: BTreeMap<String, u64>,
    /// HTTP methods per action (a read over REST is a GET).
    methods: BTreeMap<String, BTreeSet<String>>,
    throttled: BTreeMap<String, u64>,
    faults: BTreeMap<&'static str, u64>,
    denied: u64,
    /// Requests throttled so far by `throttle_first`, by action.
    forced: BTreeMap<String, u64>,
    unrecorded: BTreeMap<String, u64>,
    accounts: BTreeSet<String>,
    /// Calls admitted (not throttled) per account and service, for the throttle's share of
    /// the bound.
    per_account_service: HashMap<(String, String), u64>,
    in_flight: u64,
    max_in_flight: u64,
}

struct Shared {
    settings: Settings,
    recorded: HashMap<String, Recorded>,
    buckets: Mutex<HashMap<(String, String), (f64, Instant)>>,
    tally: Mutex<Tally>,
    rolls: AtomicU64,
    stop: AtomicBool,
    started: Instant,
}

/// A running simulator; stopped when dropped.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Loads a recording (JSON lines from `bench/latency_proxy.py --record`) and listens on
    /// 127.0.0.1:`port` (0: any free port).
    pub fn start(settings: Settings, recording: &str, port: u16) -> Result<Self, String> {
        let mut recorded = HashMap::new();
        for (n, line) in recording.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let exchange: Value =
                serde_json::from_str(line).map_err(|e| format!("recording line {}: {e}", n + 1))?;
            let text = |k: &str| exchange[k].as_str().unwrap_or_default().to_string();
            let kind = match text("account").as_str() {
                TEMPLATE_CONSUMER => Kind::Consumer,
                TEMPLATE_DATA => Kind::Data,
                _ => Kind::Caller,
            };
            let request = Request {
                method: text("method"),
                target: text("path"),
                headers: string_pairs(&exchange["headers"]),
                body: text("body").into_bytes(),
            };
            let Some((_, _, key)) = describe(&request, kind, &|s: &str| s.to_string()) else {
                continue;
            };
            let response = Recorded {
                status: exchange["status"].as_u64().unwrap_or(500) as u16,
                headers: string_pairs(&exchange["response_headers"]),
                body: text("response_body"),
            };
            recorded.entry(key).or_insert(response);
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            settings,
            recorded,
            buckets: Mutex::new(HashMap::new()),
            tally: Mutex::new(Tally::default()),
            rolls: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            started: Instant::now(),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        Ok(Self {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Recorded exchanges the simulator can replay.
    pub fn recorded(&self) -> usize {
        self.shared.recorded.len()
    }

    /// What it saw so far.
    pub fn stats(&self) -> Value {
        stats(&self.shared)
    }

    /// Blocks until `POST /__sim/shutdown`.
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A recorded JSON object of strings (headers) as pairs.
fn string_pairs(object: &Value) -> Vec<(String, String)> {
    object
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn stats(shared: &Shared) -> Value {
    let tally = shared.tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut busiest: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, service), calls) in &tally.per_account_service {
        let most = busiest.entry(service).or_default();
        *most = (*most).max(*calls);
    }
    let limits: BTreeMap<&String, [f64; 2]> = shared
        .settings
        .limits
        .iter()
        .map(|(service, l)| (service, [l.burst, l.refill]))
        .collect();
    json!({
        "limits": limits,
        "busiest_account_calls": busiest,
        "seconds": shared.started.elapsed().as_secs_f64(),
        "requests": tally.requests,
        "actions": tally.actions,
        "methods": tally.methods,
        "throttled": tally.throttled,
        "faults": tally.faults,
        "denied": tally.denied,
        "unrecorded": tally.unrecorded,
        "accounts": tally.accounts.len(),
        "max_in_flight": tally.max_in_flight,
    })
}

/// The account a request is made in: the simulator's credentials name it
/// (`ASIA` + account + `SIM0`); any other key is the starting identity.
fn account_of(request: &Request) -> String {
    let key = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default();
    match key
        .strip_prefix("ASIA")
        .and_then(|k| k.strip_suffix("SIM0"))
    {
        Some(account) if account.len() == 12 => account.to_string(),
        _ => CALLER_ACCOUNT.to_string(),
    }
}

fn place(settings: &Settings, account: &str) -> Option<Place> {
    if account == CALLER_ACCOUNT {
        return Some(Place {
            kind: Kind::Caller,
            consumer: String::new(),
            data: String::new(),
        });
    }
    let index = |prefix: &str| -> Option<usize> {
        account
            .strip_prefix(prefix)
            .filter(|_| account.len() == 12)
            .and_then(|n| n.parse().ok())
    };
    if let Some(i) = index("71").filter(|i| *i < settings.consumers) {
        return Some(Place {
            kind: Kind::Consumer,
            consumer: consumer(i),
            data: data(i / CONSUMERS_PER_DATA),
        });
    }
    // A data account's access point grants the first consumer of its ten: the template has one.
    let j = index("72").filter(|j| *j < data_accounts(settings.consumers))?;
    Some(Place {
        kind: Kind::Data,
        consumer: consumer(j * CONSUMERS_PER_DATA),
        data: data(j),
    })
}

/// The service a request is signed for (S3 Control signs as `s3`; its paths say which).
fn service_of(request: &Request) -> String {
    let service = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown");
    if service == "s3" && request.target.starts_with("/v20180820/") {
        "s3control".into()
    } else {
        service.into()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The IAM action of a REST call to S3 or S3 Control (the reads xscan and c7n make).
fn rest_action(service: &str, method: &str, path: &str, query: &[(String, String)]) -> String {
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    if service == "s3control" {
        let rest = path.trim_start_matches("/v20180820/");
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let action = match (method, segments.as_slice()) {
            ("GET", ["configuration", "publicAccessBlock"]) => "GetAccountPublicAccessBlock",
            ("GET", ["accesspoint"]) => "ListAccessPoints",
            ("GET", ["accesspoint", _]) => "GetAccessPoint",
            ("GET", ["accesspoint", _, "policy"]) => "GetAccessPointPolicy",
            ("GET", ["accesspoint", _, "policyStatus"]) => "GetAccessPointPolicyStatus",
            _ => return format!("s3:{method} {path}"),
        };
        return format!("s3:{action}");
    }
    let bucket_level =
        path.trim_matches('/').split('/').count() == 1 && !path.trim_matches('/').is_empty();
    let action = match method {
        "GET" if path == "/" => "ListAllMyBuckets",
        "GET" if bucket_level => {
            let subresources = [
                ("location", "GetBucketLocation"),
                ("policyStatus", "GetBucketPolicyStatus"),
                ("policy", "GetBucketPolicy"),
                ("publicAccessBlock", "GetBucketPublicAccessBlock"),
                ("encryption", "GetEncryptionConfiguration"),
                ("ownershipControls", "GetBucketOwnershipControls"),
                ("versioning", "GetBucketVersioning"),
                ("acl", "GetBucketAcl"),
                ("tagging", "GetBucketTagging"),
            ];
            match subresources.iter().find(|(q, _)| has(q)) {
                Some((_, action)) => action,
                None => "ListBucket",
            }
        }
        "GET" => "GetObject",
        _ => return format!("s3:{method} {path}"),
    };
    format!("s3:{action}")
}

/// The service, the IAM action and the replay key of a request, with `to_template` applied to
/// everything that names an account or a resource.
fn describe(
    request: &Request,
    kind: Kind,
    to_template: &dyn Fn(&str) -> String,
) -> Option<(String, String, String)> {
    let service = service_of(request);
    let body = String::from_utf8_lossy(&request.body);
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let (action, canonical) = if let Some(target) = request.header("x-amz-target") {
        let operation = target.rsplit('.').next().unwrap_or(target);
        let prefix = if service == "s3control" {
            "s3"
        } else {
            &service
        };
        let body = serde_json::from_str::<Value>(&to_template(&body))
            .map(|v| sorted(v).to_string())
            .unwrap_or_default();
        (format!("{prefix}:{operation}"), format!("{target} {body}"))
    } else if request.method == "POST" && body.contains("Action=") {
        let mut pairs: Vec<(String, String)> = form_pairs(&body)
            .into_iter()
            .map(|(k, v)| (k, to_template(&v)))
            .collect();
        pairs.sort();
        let action = pairs
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())?;
        let canonical = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        (format!("{service}:{action}"), canonical)
    } else {
        let mut pairs: Vec<(String, String)> = form_pairs(query)
            .into_iter()
            .filter(|(k, _)| k != "x-id")
            .map(|(k, v)| (k, to_template(&v)))
            .collect();
        pairs.sort();
        let path = to_template(&decode(path));
        let action = rest_action(&service, &request.method, &path, &pairs);
        let account = to_template(request.header("x-amz-account-id").unwrap_or_default());
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        (
            action,
            format!("{} {path}?{query} {account}", request.method),
        )
    };
    let key = format!("{kind:?} {service} {canonical}");
    Some((service, action, key))
}

/// A JSON value with every object's keys in order, so two clients' bodies compare equal.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// EC2 ids whose hex part is substituted per account.
const ID_PREFIXES: [&str; 5] = ["vpce-", "vpc-", "subnet-", "sg-", "rtb-"];

/// XORs the hex digits of every EC2 id in `text` with `mask`: its own inverse, so the same
/// call maps a request's ids to the template's and a response's back to the account's.
fn xor_ids(text: &str, mask: u64) -> String {
    if mask == 0 {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-');
        let prefix = boundary
            .then(|| ID_PREFIXES.iter().find(|p| text[i..].starts_with(**p)))
            .flatten();
        if let Some(prefix) = prefix {
            let start = i + prefix.len();
            let hex_len = bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                .count();
            let end = start + hex_len;
            let ends = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if hex_len >= 8 && ends {
                out.push_str(prefix);
                for (k, b) in bytes[start..end].iter().enumerate() {
                    let nibble = (*b as char).to_digit(16).unwrap_or(0) as u64;
                    let flipped = nibble ^ ((mask >> (4 * (k % 16))) & 0xf);
                    out.push(char::from_digit(flipped as u32, 16).unwrap_or('0'));
                }
                i = end;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// FNV-1a of an account id: the mask of its resource ids.
fn mask_of(account: &str) -> u64 {
    account.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let length: usize = request
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        request.body = vec![0; length];
        reader.read_exact(&mut request.body).ok()?;
    }
    Some(request)
}

fn write_response(stream: &mut TcpStream, response: &Response, declared: usize) -> bool {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {declared}\r\n\r\n"));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes).is_ok() && stream.flush().is_ok()
}

/// An error in the shape the service's protocol uses.
fn error(service: &str, status: u16, code: &str, message: &str) -> Response {
    let request_id = "00000000-0000-4000-8000-000000000000";
    let (content_type, body) = match service {
        "ec2" => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        "iam" | "sts" => (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"https://{service}.amazonaws.com/doc/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        "sagemaker" | "organizations" => (
            "application/x-amz-json-1.1",
            json!({"__type": code, "message": message}).to_string(),
        ),
        "s3control" => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        _ => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
    };
    Response {
        status,
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("x-amzn-requestid".into(), request_id.into()),
        ],
        body: body.into_bytes(),
    }
}

/// AWS's throttling error per service.
fn throttling(service: &str) -> Response {
    match service {
        "ec2" => error(
            service,
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        "iam" | "sts" => error(service, 400, "Throttling", "Rate exceeded"),
        "sagemaker" => error(service, 400, "ThrottlingException", "Rate exceeded"),
        "organizations" => error(service, 400, "TooManyRequestsException", "Rate exceeded"),
        _ => error(service, 503, "SlowDown", "Please reduce your request rate."),
    }
}

fn access_denied(service: &str, action: &str) -> Response {
    let message = format!("not authorized to perform: {action}");
    match service {
        "ec2" => error(service, 403, "UnauthorizedOperation", &message),
        "sagemaker" | "organizations" => error(service, 400, "AccessDeniedException", &message),
        _ => error(service, 403, "AccessDenied", &message),
    }
}

fn server_error(service: &str, status: u16) -> Response {
    let code = match (service, status) {
        ("ec2", 500) => "InternalError",
        ("ec2", _) => "Unavailable",
        ("iam", 500) => "ServiceFailure",
        ("sagemaker", 500) => "InternalFailure",
        (_, 500) => "InternalError",
        _ => "ServiceUnavailable",
    };
    error(service, status, code, "simulated fault")
}

/// Takes a token from the account's bucket for the service; false when it is empty.
fn admit(shared: &Shared, account: &str, service: &str) -> bool {
    let Some(limit) = shared.settings.limits.get(service) else {
        return true;
    };
    let mut buckets = shared.buckets.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let (tokens, last) = buckets
        .entry((account.to_string(), service.to_string()))
        .or_insert((limit.burst, now));
    *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * limit.refill).min(limit.burst);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

/// The credentials and identity the simulator issues itself (AssumeRole, GetCallerIdentity);
/// AssumeRole into an account outside the estate is refused.
fn sts_answer(
    settings: &Settings,
    action: &str,
    request: &Request,
    account: &str,
) -> Option<Response> {
    let xml = |body: String| Response {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.into_bytes(),
    };
    match action {
        "sts:GetCallerIdentity" => Some(xml(format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:sts::{account}:assumed-role/{AUDIT_ROLE}/xscan</Arn><UserId>AROASIMULATED:xscan</UserId><Account>{account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        ))),
        "sts:AssumeRole" => {
            let pairs = form_pairs(&String::from_utf8_lossy(&request.body));
            let get = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let role_arn = get("RoleArn");
            let session = get("RoleSessionName");
            let target = role_arn.split(':').nth(4).unwrap_or_default().to_string();
            if place(settings, &target).is_none_or(|p| p.kind == Kind::Caller) {
                return Some(access_denied("sts", action));
            }
            let role = role_arn.rsplit('/').next().unwrap_or_default().to_string();
            Some(xml(format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIA{target}SIM0</AccessKeyId><SecretAccessKey>simulated</SecretAccessKey><SessionToken>simulated-{target}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROASIMULATED:{session}</AssumedRoleId><Arn>arn:aws:sts::{target}:assumed-role/{role}/{session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
            )))
        }
        _ => None,
    }
}

/// What to do with one request.
enum Outcome {
    Answer(Response),
    Fault(Fault, Response),
}

fn handle(shared: &Shared, request: &Request) -> Outcome {
    let settings = &shared.settings;
    let account = account_of(request);
    let service = service_of(request);
    let Some(here) = place(settings, &account) else {
        return Outcome::Answer(error(
            &service,
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    };
    let mask = match here.kind {
        Kind::Caller => 0,
        _ => mask_of(&here.consumer),
    };
    let to_template = |text: &str| {
        let text = if here.kind == Kind::Caller {
            text.to_string()
        } else {
            text.replace(&here.consumer, TEMPLATE_CONSUMER)
                .replace(&here.data, TEMPLATE_DATA)
        };
        xor_ids(&text, mask)
    };
    let from_template = |text: &str| {
        let text = xor_ids(text, mask);
        if here.kind == Kind::Caller {
            text
        } else {
            text.replace(TEMPLATE_CONSUMER, &here.consumer)
                .replace(TEMPLATE_DATA, &here.data)
        }
    };
    let Some((service, action, key)) = describe(request, here.kind, &to_template) else {
        return Outcome::Answer(error(&service, 400, "MissingAction", "no action"));
    };
    {
        let mut tally = shared.tally.lock().unwrap_or_else(|e| e.into_inner());
        tally.requests += 1;
        *tally.actions.entry(action.clone()).or_default() += 1;
        tally
            .methods
            .entry(action.clone())
            .or_default()
            .insert(request.method.clone());
        tally.accounts.insert(account.clone());
    }
    let count =
        |f: &dyn Fn(&mut Tally)| f(&mut shared.tally.lock().unwrap_or_else(|e| e.into_inner()));
    let forced = settings.throttle_first.get(&action).is_some_and(|first| {
        let mut tally = shared.tally.lock().unwrap_or_else(|e| e.into_inner());
        let so_far = tally.forced.entry(action.clone()).or_default();
        *so_far += 1;
        *so_far <= *first
    });
    if forced || !admit(shared, &account, &service) {
        count(&|t| *t.throttled.entry(service.clone()).or_default() += 1);
        return Outcome::Answer(throttling(&service));
    }
    count(&|t| {
        *t.per_account_service
            .entry((account.clone(), service.clone()))
            .or_default() += 1
    });
    if settings.deny.contains(&action) {
        count(&|t| t.denied += 1);
        return Outcome::Answer(access_denied(&service, &action));
    }
    if let Some(answer) = sts_answer(settings, &action, request, &account) {
        return roll_fault(shared, &service, answer);
    }
    let Some(recorded) = shared.recorded.get(&key) else {
        count(&|t| *t.unrecorded.entry(action.clone()).or_default() += 1);
        return Outcome::Answer(error(
            &service,
            400,
            "SimulatorUnrecordedCall",
            &format!("no recorded answer for {action}"),
        ));
    };
    let response = Response {
        status: recorded.status,
        headers: recorded
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), from_template(v)))
            .collect(),
        body: from_template(&recorded.body).into_bytes(),
    };
    roll_fault(shared, &service, response)
}

fn roll_fault(shared: &Shared, service: &str, response: Response) -> Outcome {
    let settings = &shared.settings;
    if settings.fault_one_in == 0 || settings.faults.is_empty() {
        return Outcome::Answer(response);
    }
    let n = shared.rolls.fetch_add(1, Ordering::Relaxed);
    let roll = splitmix(settings.seed ^ splitmix(n));
    if !roll.is_multiple_of(settings.fault_one_in) {
        return Outcome::Answer(response);
    }
    let fault = settings.faults[((roll >> 32) as usize) % settings.faults.len()];
    let response = match fault {
        Fault::Internal => server_error(service, 500),
        Fault::Unavailable => server_error(service, 503),
        _ => response,
    };
    Outcome::Fault(fault, response)
}

fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    let mut connection_roll = splitmix(shared.settings.seed ^ shared.rolls.load(Ordering::Relaxed));
    while let Some(request) = read_request(&mut reader) {
        if request.target.starts_with("/__sim/") {
            if request.target == "/__sim/shutdown" {
                shared.stop.store(true, Ordering::SeqCst);
            }
            let body = stats(shared).to_string().into_bytes();
            let response = Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            };
            let _ = write_response(&mut stream, &response, response.body.len());
            if shared.stop.load(Ordering::SeqCst) {
                // Wake the accept loop so it sees the stop.
                if let Ok(addr) = stream.local_addr() {
                    let _ = TcpStream::connect(addr);
                }
            }
            continue;
        }
        {
            let mut tally = shared.tally.lock().unwrap_or_else(|e| e.into_inner());
            tally.in_flight += 1;
            tally.max_in_flight = tally.max_in_flight.max(tally.in_flight);
        }
        let outcome = handle(shared, &request);
        let settings = &shared.settings;
        connection_roll = splitmix(connection_roll);
        let jitter = if settings.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(connection_roll % settings.jitter.as_nanos().max(1) as u64)
        };
        std::thread::sleep(settings.latency + jitter);
        let keep = match outcome {
            Outcome::Answer(response) => {
                write_response(&mut stream, &response, response.body.len())
            }
            Outcome::Fault(fault, mut response) => {
                *shared
                    .tally
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .faults
                    .entry(fault.name())
                    .or_default() += 1;
                match fault {
                    Fault::Internal | Fault::Unavailable => {
                        write_response(&mut stream, &response, response.body.len())
                    }
                    Fault::Reset => false,
                    Fault::Slow => {
                        std::thread::sleep(settings.slow);
                        write_response(&mut stream, &response, response.body.len())
                    }
                    Fault::TruncatedMatching => {
                        response.body.truncate(response.body.len() / 2);
                        write_response(&mut stream, &response, response.body.len())
                    }
                    Fault::TruncatedShort => {
                        let whole = response.body.len();
                        response.body.truncate(whole / 2);
                        let _ = write_response(&mut stream, &response, whole);
                        false
                    }
                }
            }
        };
        shared
            .tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight -= 1;
        if !keep {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// The xscan configuration and the Cloud Custodian accounts file for the simulated estate of
/// `consumers` consumer accounts.
pub fn estate_configs(consumers: usize, concurrency: usize) -> (String, String) {
    let mut xscan = format!(
        "scope: simulated\nregions: [us-east-1]\ncollection: {{concurrency: {concurrency}}}\naccounts:\n"
    );
    let mut c7n = String::from("accounts:\n");
    let accounts = (0..consumers)
        .map(|i| (consumer(i), "consumer"))
        .chain((0..data_accounts(consumers)).map(|j| (data(j), "data")));
    for (id, role) in accounts {
        let arn = format!("arn:aws:iam::{id}:role/{AUDIT_ROLE}");
        xscan.push_str(&format!(
            "  - {{id: \"{id}\", role: {role}, assume_role: \"{arn}\"}}\n"
        ));
        c7n.push_str(&format!(
            "  - {{account_id: \"{id}\", name: \"{role}-{id}\", regions: [us-east-1], role: \"{arn}\"}}\n"
        ));
    }
    let roles: Vec<String> = (0..consumers)
        .map(|i| format!("\"arn:aws:iam::{}:role/xscan-sagemaker-exec\"", consumer(i)))
        .collect();
    xscan.push_str(&format!(
        "perimeter:\n  data_account: \"{d}\"\n  dataset_buckets: [test-bucket-1]\n  access_points: [\"arn:aws:s3:us-east-1:{d}:accesspoint/test-ap-1\"]\n  execution_roles: [{roles}]\n",
        d = data(0),
        roles = roles.join(", ")
    ));
    (xscan, c7n)
}
