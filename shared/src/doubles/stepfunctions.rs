//! Step Functions in memory (the port of `adapters::stepfunctions`): records each started
//! execution; a name started before answers `already_existed`, as `ExecutionAlreadyExists` does.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;
use crate::monitoring::scaleout::{Executions, Started, execution_arn};

/// An execution the double was asked to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    pub state_machine_arn: String,
    pub name: String,
    pub input: String,
}

#[derive(Debug, Default)]
pub struct RecordingExecutions {
    pub started: Mutex<Vec<StartedExecution>>,
}

impl RecordingExecutions {
    pub fn started(&self) -> Vec<StartedExecution> {
        self.started.lock().unwrap().clone()
    }
}

#[async_trait]
impl Executions for RecordingExecutions {
    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<Started, AwsError> {
        let mut started = self.started.lock().unwrap();
        let already_existed = started
            .iter()
            .any(|e| e.state_machine_arn == state_machine_arn && e.name == name);
        if !already_existed {
            started.push(StartedExecution {
                state_machine_arn: state_machine_arn.to_owned(),
                name: name.to_owned(),
                input: input.to_owned(),
            });
        }
        Ok(Started {
            execution_arn: execution_arn(state_machine_arn, name),
            already_existed,
        })
    }
}
