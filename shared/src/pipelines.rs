//! SageMaker Model Building Pipelines, as the loop sees them: a port to start an execution
//! idempotently and to list the recent executions of a pipeline.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

/// `PipelineExecutionStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionStatus {
    Executing,
    Stopping,
    Stopped,
    Failed,
    Succeeded,
    /// A value this version of driftloop does not know, kept verbatim.
    #[serde(untagged)]
    Other(String),
}

impl ExecutionStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Executing" => ExecutionStatus::Executing,
            "Stopping" => ExecutionStatus::Stopping,
            "Stopped" => ExecutionStatus::Stopped,
            "Failed" => ExecutionStatus::Failed,
            "Succeeded" => ExecutionStatus::Succeeded,
            other => ExecutionStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Executing => "Executing",
            ExecutionStatus::Stopping => "Stopping",
            ExecutionStatus::Stopped => "Stopped",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Succeeded => "Succeeded",
            ExecutionStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `ListPipelineExecutions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub arn: String,
    pub status: ExecutionStatus,
    pub start_time: DateTime<Utc>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One page of `ListPipelineExecutions`, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionPage {
    pub executions: Vec<ExecutionSummary>,
    pub next_token: Option<String>,
}

/// `StartPipelineExecution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartExecution {
    /// Name or ARN of the pipeline.
    pub pipeline: String,
    /// 32-128 characters; a repeated token returns the execution the first call started.
    pub client_request_token: String,
    /// 1-82 characters of `[a-zA-Z0-9-]`, starting and ending with a letter or digit.
    pub display_name: String,
    /// At most 3,072 characters.
    pub description: String,
    /// Pipeline parameters (names `[A-Za-z0-9_-]{1,256}`, values at most 1,024 characters).
    pub parameters: BTreeMap<String, String>,
}

/// The Model Building Pipelines port. The SageMaker adapter lists with `SortBy=CreationTime`,
/// `SortOrder=Descending`.
#[async_trait]
pub trait PipelineRunner: Send + Sync {
    /// Starts an execution (or, for a token seen before, returns the execution it started);
    /// returns the execution ARN.
    async fn start_execution(&self, request: &StartExecution) -> Result<String, AwsError>;

    /// One page of the executions of `pipeline` created after `created_after`, newest first.
    async fn list_executions(
        &self,
        pipeline: &str,
        created_after: Option<DateTime<Utc>>,
        next_token: Option<String>,
    ) -> Result<ExecutionPage, AwsError>;
}

/// Bound on the pages [`recent_executions`] reads (100 executions a page in the adapter).
pub const MAX_EXECUTION_PAGES: usize = 20;

/// The executions of `pipeline` started since `since`, newest first, every page followed up to
/// [`MAX_EXECUTION_PAGES`] (beyond that, the newest ones are what matters).
pub async fn recent_executions(
    runner: &dyn PipelineRunner,
    pipeline: &str,
    since: DateTime<Utc>,
) -> Result<Vec<ExecutionSummary>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    for _ in 0..MAX_EXECUTION_PAGES {
        let page = runner.list_executions(pipeline, Some(since), token).await?;
        all.extend(page.executions);
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    // The service filters on creation time; filter on start time too, newest first, so a lax
    // listing cannot change a decision.
    all.retain(|e| e.start_time >= since);
    all.sort_by_key(|e| std::cmp::Reverse(e.start_time));
    Ok(all)
}
