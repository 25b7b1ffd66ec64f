use serde::{Deserialize, Serialize};

/// One message from the events websocket (`/1.0/events`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Event {
    /// `operation`, `logging` or `lifecycle`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Time (RFC 3339).
    pub timestamp: String,
    /// Payload: an operation object for `operation` events, `{action, source, context}` for
    /// `lifecycle`, `{message, level, context}` for `logging`.
    pub metadata: serde_json::Value,
    /// Cluster member.
    pub location: String,
    /// Project (newer servers).
    pub project: Option<String>,
}

impl Event {
    /// For a `lifecycle` event, its action (e.g. `instance-started`).
    pub fn lifecycle_action(&self) -> Option<&str> {
        self.metadata.get("action")?.as_str()
    }

    /// For an `operation` event, the operation it carries.
    pub fn operation(&self) -> Option<super::Operation> {
        if self.event_type != "operation" {
            return None;
        }
        serde_json::from_value(self.metadata.clone()).ok()
    }
}
