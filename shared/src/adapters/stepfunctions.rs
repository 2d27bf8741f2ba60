//! Step Functions adapter: the scale-out mode's [`Executions`] port (`StartExecution`).

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use crate::error::AwsError;
use crate::monitoring::scaleout::{Executions, Started, execution_arn};

const SERVICE: &str = "states";

#[derive(Clone, Debug)]
pub struct StepFunctions {
    client: Client,
}

impl StepFunctions {
    pub fn new(client: Client) -> Self {
        StepFunctions { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Executions for StepFunctions {
    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<Started, AwsError> {
        const OP: &str = "StartExecution";
        match self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(out) => Ok(Started {
                execution_arn: out.execution_arn().to_owned(),
                already_existed: false,
            }),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                // A closed execution of that name (the same inputs: the name is derived from
                // them), or a running one started with a different input document.
                if e.code.as_deref() == Some("ExecutionAlreadyExists") {
                    Ok(Started {
                        execution_arn: execution_arn(state_machine_arn, name),
                        already_existed: true,
                    })
                } else {
                    Err(e)
                }
            }
        }
    }
}
