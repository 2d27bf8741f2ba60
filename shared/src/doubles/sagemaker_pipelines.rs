//! Pipelines in memory (the port of `adapters::sagemaker_pipelines`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::AwsError;
use crate::pipelines::{
    ExecutionPage, ExecutionStatus, ExecutionSummary, PipelineRunner, StartExecution,
};

/// A recorded execution.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedExecution {
    pub request: StartExecution,
    pub summary: ExecutionSummary,
}

/// Pipelines in memory. `start_execution` is idempotent on the client request token (per
/// pipeline), as SageMaker is; new executions get status `new_status` (default `Executing`) and
/// start time `clock` (default: now). Pipelines must be created first (else `ResourceNotFound`).
pub struct InMemoryPipelines {
    state: Mutex<State>,
    start_calls: AtomicUsize,
    list_calls: AtomicUsize,
    pub page_size: usize,
}

struct State {
    pipelines: HashMap<String, Vec<RecordedExecution>>,
    tokens: HashMap<(String, String), String>,
    failures: Vec<(&'static str, AwsError)>,
    new_status: ExecutionStatus,
    clock: Option<DateTime<Utc>>,
    next_id: u64,
}

impl Default for InMemoryPipelines {
    fn default() -> Self {
        InMemoryPipelines {
            state: Mutex::new(State {
                pipelines: HashMap::new(),
                tokens: HashMap::new(),
                failures: Vec::new(),
                new_status: ExecutionStatus::Executing,
                clock: None,
                next_id: 1,
            }),
            start_calls: AtomicUsize::new(0),
            list_calls: AtomicUsize::new(0),
            page_size: 100,
        }
    }
}

impl InMemoryPipelines {
    pub fn with_pipelines<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let p = Self::default();
        for n in names {
            p.create(n);
        }
        p
    }

    pub fn create(&self, pipeline: &str) {
        self.state
            .lock()
            .unwrap()
            .pipelines
            .entry(pipeline.to_owned())
            .or_default();
    }

    /// The status of executions started from now on.
    pub fn set_new_status(&self, status: ExecutionStatus) {
        self.state.lock().unwrap().new_status = status;
    }

    /// The start time of executions started from now on (`None`: the wall clock).
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        self.state.lock().unwrap().clock = now;
    }

    /// Adds an execution as if it had been started earlier (by anyone).
    pub fn add_execution(&self, pipeline: &str, summary: ExecutionSummary) {
        let request = StartExecution {
            pipeline: pipeline.to_owned(),
            client_request_token: format!("seeded-{}", summary.arn),
            display_name: summary.display_name.clone().unwrap_or_default(),
            description: summary.description.clone().unwrap_or_default(),
            parameters: Default::default(),
        };
        self.state
            .lock()
            .unwrap()
            .pipelines
            .entry(pipeline.to_owned())
            .or_default()
            .push(RecordedExecution { request, summary });
    }

    pub fn set_status(&self, arn: &str, status: ExecutionStatus) {
        for e in self
            .state
            .lock()
            .unwrap()
            .pipelines
            .values_mut()
            .flatten()
            .filter(|e| e.summary.arn == arn)
        {
            e.summary.status = status.clone();
        }
    }

    /// The next call of `operation` (`StartPipelineExecution` or `ListPipelineExecutions`) fails.
    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.state.lock().unwrap().failures.push((operation, error));
    }

    pub fn executions(&self, pipeline: &str) -> Vec<RecordedExecution> {
        self.state
            .lock()
            .unwrap()
            .pipelines
            .get(pipeline)
            .cloned()
            .unwrap_or_default()
    }

    pub fn start_calls(&self) -> usize {
        self.start_calls.load(Ordering::SeqCst)
    }

    pub fn list_calls(&self) -> usize {
        self.list_calls.load(Ordering::SeqCst)
    }

    fn take_failure(state: &mut State, operation: &str) -> Option<AwsError> {
        let i = state.failures.iter().position(|(op, _)| *op == operation)?;
        Some(state.failures.remove(i).1)
    }

    fn not_found(operation: &str, pipeline: &str) -> AwsError {
        AwsError::classify(
            "sagemaker",
            if operation == "start" {
                "StartPipelineExecution"
            } else {
                "ListPipelineExecutions"
            },
            Some("ResourceNotFound"),
            Some(400),
            format!("Pipeline '{pipeline}' does not exist."),
        )
    }
}

#[async_trait]
impl PipelineRunner for InMemoryPipelines {
    async fn start_execution(&self, request: &StartExecution) -> Result<String, AwsError> {
        self.start_calls.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        if let Some(e) = Self::take_failure(&mut state, "StartPipelineExecution") {
            return Err(e);
        }
        if !state.pipelines.contains_key(&request.pipeline) {
            return Err(Self::not_found("start", &request.pipeline));
        }
        let key = (
            request.pipeline.clone(),
            request.client_request_token.clone(),
        );
        if let Some(arn) = state.tokens.get(&key) {
            return Ok(arn.clone());
        }
        let id = state.next_id;
        state.next_id += 1;
        let arn = format!(
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/{}/execution/exec{id:08}",
            request.pipeline
        );
        let summary = ExecutionSummary {
            arn: arn.clone(),
            status: state.new_status.clone(),
            start_time: state.clock.unwrap_or_else(Utc::now),
            display_name: Some(request.display_name.clone()),
            description: Some(request.description.clone()),
        };
        state.tokens.insert(key, arn.clone());
        state
            .pipelines
            .get_mut(&request.pipeline)
            .unwrap()
            .push(RecordedExecution {
                request: request.clone(),
                summary,
            });
        Ok(arn)
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        created_after: Option<DateTime<Utc>>,
        next_token: Option<String>,
    ) -> Result<ExecutionPage, AwsError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        if let Some(e) = Self::take_failure(&mut state, "ListPipelineExecutions") {
            return Err(e);
        }
        let Some(all) = state.pipelines.get(pipeline) else {
            return Err(Self::not_found("list", pipeline));
        };
        let mut rows: Vec<ExecutionSummary> = all
            .iter()
            .map(|e| e.summary.clone())
            .filter(|s| created_after.is_none_or(|t| s.start_time > t))
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(e.start_time));
        let start: usize = next_token
            .map(|t| t.parse().expect("token from this double"))
            .unwrap_or(0);
        let end = (start + self.page_size).min(rows.len());
        let next_token = (end < rows.len()).then(|| end.to_string());
        Ok(ExecutionPage {
            executions: rows[start.min(end)..end].to_vec(),
            next_token,
        })
    }
}
