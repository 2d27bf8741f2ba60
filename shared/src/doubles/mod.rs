//! In-memory doubles of the ports, one file per port mirroring `adapters/`, for domain and
//! handler tests that need no network (the adapters are tested against the local emulator).
//! The publishing doubles apply the adapters' own checks, so a test sees what AWS would refuse.

pub mod application_autoscaling;
pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod eventbridge;
pub mod lagging_registry;

pub mod lease;
pub mod s3;
pub mod sagemaker;
pub mod sagemaker_hosting;
pub mod sagemaker_pipelines;
pub mod stepfunctions;

pub use application_autoscaling::{InMemoryScaling, ScalingState};
pub use cloudwatch::RecordingMetrics;
pub use cloudwatch_alarms::{InMemoryAlarmStates, InMemoryAlarms, InMemoryDashboards};
pub use eventbridge::RecordingEvents;
pub use lagging_registry::LaggingRegistry;

pub use lease::InMemoryConditionalStore;
pub use s3::InMemoryStore;
pub use sagemaker::{InMemoryRegistry, package};
pub use sagemaker_hosting::{HostingState, InMemoryHosting, UpdateFate};
pub use sagemaker_pipelines::{InMemoryPipelines, RecordedExecution};
pub use stepfunctions::{RecordingExecutions, StartedExecution};
