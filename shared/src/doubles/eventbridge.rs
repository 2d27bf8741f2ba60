//! Recorded events (the port of `adapters::eventbridge`); applies `OutgoingEvent::validate` as the adapter does.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::publish::{EventPublisher, OutgoingEvent, PublishError};

/// Records published events; can fail its next calls.
#[derive(Default)]
pub struct RecordingEvents {
    events: Mutex<Vec<OutgoingEvent>>,
    failures: Mutex<Vec<PublishError>>,
}

impl RecordingEvents {
    pub fn events(&self) -> Vec<OutgoingEvent> {
        self.events.lock().unwrap().clone()
    }

    /// The recorded events of one detail-type.
    pub fn of_type(&self, detail_type: &str) -> Vec<OutgoingEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .collect()
    }

    pub fn fail_next(&self, error: PublishError) {
        self.failures.lock().unwrap().push(error);
    }
}

#[async_trait]
impl EventPublisher for RecordingEvents {
    async fn publish(&self, event: &OutgoingEvent) -> Result<String, PublishError> {
        event.validate()?;
        {
            let mut f = self.failures.lock().unwrap();
            if !f.is_empty() {
                return Err(f.remove(0));
            }
        }
        let mut events = self.events.lock().unwrap();
        events.push(event.clone());
        Ok(format!("event-{}", events.len()))
    }
}
