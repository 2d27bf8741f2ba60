//! Test harness for the emulator-backed tests: finds (or starts) the local AWS emulator, builds
//! SDK clients pointed at it, injects faults, and seeds SageMaker.
//!
//! The README's test command starts the emulator once and exports `AWS_ENDPOINT_URL`; a test
//! binary run on its own starts it through `emulator/run start` (which reuses a running one).
//! Tests share one emulator and run concurrently, so every test names its resources uniquely
//! ([`unique`]) and scopes its faults to them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sagemaker::config::Credentials;
use driftloop::aws::Aws;

pub mod monitoring;
pub mod seed;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repo")
        .to_path_buf()
}

#[derive(Debug, Clone)]
pub struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// The running emulator (started on first use when `AWS_ENDPOINT_URL` is not set).
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
            if !url.trim().is_empty() {
                return Emulator {
                    endpoint: url.trim().trim_end_matches('/').to_owned(),
                };
            }
        }
        let script = repo_root().join("emulator/run");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .expect("run emulator/run start");
        assert!(
            out.status.success(),
            "emulator/run start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let endpoint = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export AWS_ENDPOINT_URL="))
            .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
            .next()
            .unwrap_or_else(|| panic!("emulator/run start printed no AWS_ENDPOINT_URL:\n{stdout}"));
        Emulator { endpoint }
    })
}

impl Emulator {
    fn host_port(&self) -> &str {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
    }

    /// A raw HTTP/1.1 request to the emulator (loopback only); returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.host_port()).expect("connect to emulator");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host_port(),
            body.len()
        );
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Makes the next `count` calls of `operation` whose request contains `matching` fail with
    /// `kind` (`throttle` or `500`).
    pub fn inject_fault(&self, operation: &str, count: u32, kind: &str, matching: &str) {
        let body = serde_json::json!({"operation": operation, "count": count, "kind": kind, "match": matching});
        let (status, text) = self.http("POST", "/driftloop/faults", &body.to_string());
        assert!(
            (200..300).contains(&status),
            "fault injection failed: {status} {text}"
        );
    }
}

impl Emulator {
    /// Sets a SageMaker endpoint's or pipeline execution's status through the emulator's test
    /// control (`{"endpoint": name, "status": ...}` / `{"pipeline_execution": arn, "status": ...}`).
    pub fn set_sagemaker_status(&self, body: serde_json::Value) {
        let (status, text) = self.http("POST", "/driftloop/sagemaker/status", &body.to_string());
        assert_eq!(status, 200, "status control failed: {text}");
    }

    /// How many injections are left of the fault scoped to `matching` (None: no such fault).
    pub fn fault_remaining(&self, matching: &str) -> Option<u64> {
        let (_, body) = self.http("GET", "/driftloop/faults", "");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["faults"]
            .as_array()?
            .iter()
            .find(|f| f["match"] == matching)
            .and_then(|f| f["remaining"].as_u64())
    }
}

/// SDK configuration pointed at the emulator, with test credentials; no process-wide state.
pub async fn aws() -> Aws {
    let emu = emulator();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&emu.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "driftloop-tests",
        ))
        .load()
        .await;
    Aws::from_config(sdk, true)
}

/// `prefix-<unique suffix>`: letters, digits and hyphens only, short enough for SageMaker names.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}{:x}{n}",
        std::process::id() % 4096,
        nanos % 0xFFFFFF
    )
}
