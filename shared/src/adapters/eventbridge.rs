//! EventBridge adapter: the [`EventPublisher`] port.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::AwsError;
use crate::publish::{EventPublisher, OutgoingEvent, PublishError, failed_entry};

const SERVICE: &str = "eventbridge";

#[derive(Clone, Debug)]
pub struct EventBridge {
    client: Client,
}

impl EventBridge {
    pub fn new(client: Client) -> Self {
        EventBridge { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl EventPublisher for EventBridge {
    async fn publish(&self, event: &OutgoingEvent) -> Result<String, PublishError> {
        const OP: &str = "PutEvents";
        let detail = event.validate()?;
        let entry = PutEventsRequestEntry::builder()
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(detail)
            .set_resources((!event.resources.is_empty()).then(|| event.resources.clone()))
            .set_time(
                event
                    .time
                    .map(|t| aws_smithy_types::DateTime::from_millis(t.timestamp_millis())),
            )
            .set_event_bus_name(event.event_bus_name.clone())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        let result = out.entries().first();
        if out.failed_entry_count() > 0 || result.is_some_and(|r| r.error_code().is_some()) {
            return Err(failed_entry(
                result.and_then(|r| r.error_code()),
                result.and_then(|r| r.error_message()),
            ));
        }
        result
            .and_then(|r| r.event_id())
            .map(str::to_owned)
            .ok_or_else(|| {
                AwsError::classify(SERVICE, OP, None, None, "response has no EventId").into()
            })
    }
}
