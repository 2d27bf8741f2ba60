//! SageMaker adapter, Model Building Pipelines part: the [`PipelineRunner`] port.

use async_trait::async_trait;
use aws_sdk_sagemaker::types::{Parameter, SortOrder, SortPipelineExecutionsBy};
use chrono::{DateTime, Utc};

use super::sagemaker::{SERVICE, SageMaker, missing};
use super::to_chrono;
use crate::error::AwsError;
use crate::pipelines::{
    ExecutionPage, ExecutionStatus, ExecutionSummary, PipelineRunner, StartExecution,
};

fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

#[async_trait]
impl PipelineRunner for SageMaker {
    async fn start_execution(&self, request: &StartExecution) -> Result<String, AwsError> {
        const OP: &str = "StartPipelineExecution";
        let parameters = request
            .parameters
            .iter()
            .map(|(name, value)| Parameter::builder().name(name).value(value).build())
            .collect::<Vec<_>>();
        let out = self
            .client()
            .start_pipeline_execution()
            .pipeline_name(&request.pipeline)
            .client_request_token(&request.client_request_token)
            .pipeline_execution_display_name(&request.display_name)
            .pipeline_execution_description(&request.description)
            .set_pipeline_parameters(Some(parameters))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        out.pipeline_execution_arn()
            .map(str::to_owned)
            .ok_or_else(|| {
                AwsError::classify(
                    SERVICE,
                    OP,
                    None,
                    None,
                    "response has no PipelineExecutionArn",
                )
            })
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        created_after: Option<DateTime<Utc>>,
        next_token: Option<String>,
    ) -> Result<ExecutionPage, AwsError> {
        const OP: &str = "ListPipelineExecutions";
        let out = self
            .client()
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .set_created_after(created_after.map(to_smithy))
            .sort_by(SortPipelineExecutionsBy::CreationTime)
            .sort_order(SortOrder::Descending)
            .max_results(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        let executions = out
            .pipeline_execution_summaries()
            .iter()
            .map(|s| {
                Ok(ExecutionSummary {
                    arn: s
                        .pipeline_execution_arn()
                        .ok_or_else(|| missing(OP, "PipelineExecutionArn"))?
                        .to_owned(),
                    status: ExecutionStatus::parse(
                        s.pipeline_execution_status()
                            .map(|x| x.as_str())
                            .unwrap_or_default(),
                    ),
                    start_time: s
                        .start_time()
                        .and_then(to_chrono)
                        .ok_or_else(|| missing(OP, "StartTime"))?,
                    display_name: s.pipeline_execution_display_name().map(str::to_owned),
                    description: s.pipeline_execution_description().map(str::to_owned),
                })
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        Ok(ExecutionPage {
            executions,
            next_token: out.next_token().map(str::to_owned),
        })
    }
}
