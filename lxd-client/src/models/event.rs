use serde::{Deserialize, Serialize};

use super::{Operation, name_from_url};
use crate::error::{Error, Result};

/// The kind of an [`Event`]; a kind this crate does not know is kept in
/// [`EventType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum EventType {
    /// An operation was created or changed; the metadata is the [`Operation`].
    Operation,
    /// A log line of the daemon (`{message, level, context}`).
    Logging,
    /// Something happened to an object (`{action, source, context}`), e.g. `instance-started`.
    Lifecycle,
    /// A type this crate does not know, as the server named it.
    Other(String),
}

impl EventType {
    /// The name on the wire (`operation`, `logging`, `lifecycle`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Operation => "operation",
            EventType::Logging => "logging",
            EventType::Lifecycle => "lifecycle",
            EventType::Other(other) => other,
        }
    }
}

impl Default for EventType {
    fn default() -> Self {
        EventType::Other(String::new())
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        match name.as_str() {
            "operation" => EventType::Operation,
            "logging" => EventType::Logging,
            "lifecycle" => EventType::Lifecycle,
            _ => EventType::Other(name),
        }
    }
}

impl From<EventType> for String {
    fn from(kind: EventType) -> Self {
        kind.as_str().to_string()
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message from the events websocket (`/1.0/events`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Event {
    /// `operation`, `logging` or `lifecycle`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Time (RFC 3339).
    pub timestamp: String,
    /// Payload: an operation object for `operation` events, `{action, source, context}` for
    /// `lifecycle`, `{message, level, context}` for `logging`.
    pub metadata: serde_json::Value,
    /// Cluster member.
    pub location: String,
    /// Project (LXD 5.0.2 sends it with `operation` and `lifecycle` events, not `logging`).
    pub project: Option<String>,
}

impl Event {
    /// For a `lifecycle` event, its action (e.g. `instance-started`).
    pub fn lifecycle_action(&self) -> Option<&str> {
        self.metadata.get("action")?.as_str()
    }

    /// For an `operation` event, the operation it carries; `Ok(None)` for other events.
    ///
    /// # Errors
    /// [`Error::Decode`], naming the field, when the metadata is not an operation.
    pub fn operation(&self) -> Result<Option<Operation>> {
        if self.event_type != EventType::Operation {
            return Ok(None);
        }
        serde_path_to_error::deserialize(&self.metadata)
            .map(Some)
            .map_err(|e| Error::Decode {
                path: "/1.0/events".into(),
                field: format!("metadata.{}", e.path()),
                source: e.into_inner(),
            })
    }

    /// The instance this event concerns, if any: a lifecycle event's `source`
    /// (`/1.0/instances/c1/snapshots/s0` concerns `c1`), an operation's first instance in
    /// `resources`, a log line's `context.instance`.
    pub fn instance(&self) -> Option<String> {
        let m = &self.metadata;
        match self.event_type {
            EventType::Lifecycle => instance_of_url(m.get("source")?.as_str()?),
            EventType::Operation => {
                let resources = m.get("resources")?;
                ["instances", "containers", "virtual-machines"]
                    .iter()
                    .filter_map(|k| resources.get(k)?.as_array()?.first()?.as_str())
                    .find_map(instance_of_url)
            }
            EventType::Logging => {
                let name = m.get("context")?.get("instance")?.as_str()?;
                // Snapshots are logged as `instance/snapshot`.
                Some(name.split('/').next().unwrap_or(name).to_string())
            }
            _ => None,
        }
    }

    /// The project of the event: the message's own field, or for log lines their
    /// `context.project`.
    pub fn project(&self) -> Option<&str> {
        self.project
            .as_deref()
            .filter(|p| !p.is_empty())
            .or_else(|| self.metadata.get("context")?.get("project")?.as_str())
    }
}

/// `c1` from `/1.0/instances/c1`, `/1.0/instances/c1/snapshots/s0`, `/1.0/containers/c1?project=p`.
fn instance_of_url(url: &str) -> Option<String> {
    let path = url.split('?').next().unwrap_or(url);
    let rest = [
        "/1.0/instances/",
        "/1.0/containers/",
        "/1.0/virtual-machines/",
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(prefix))?;
    let name = rest.split('/').next().filter(|n| !n.is_empty())?;
    Some(name_from_url(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Event {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn recorded_events_tell_their_instance_and_project() {
        let op = fixture("events_operation.json");
        assert_eq!(op.event_type, EventType::Operation);
        assert_eq!(op.instance().as_deref(), Some("kdtest-20621-ev"));
        assert_eq!(op.project(), Some("default"));
        let done = op.operation().unwrap().unwrap();
        assert_eq!(done.description, "Starting instance");

        let snap = fixture("events_lifecycle_snapshot.json");
        assert_eq!(snap.lifecycle_action(), Some("instance-snapshot-created"));
        assert_eq!(snap.instance().as_deref(), Some("kdtest-20621-ev"));
        assert!(snap.operation().unwrap().is_none());

        let log = fixture("events_logging.json");
        assert_eq!(log.event_type, EventType::Logging);
        assert_eq!(log.project, None);
        assert_eq!(log.project(), Some("default"));
        assert_eq!(log.instance().as_deref(), Some("kdtest-20621-ev"));
    }

    #[test]
    fn unknown_types_are_kept() {
        let e: Event = serde_json::from_str(r#"{"type":"ovn","metadata":{}}"#).unwrap();
        assert_eq!(e.event_type, EventType::Other("ovn".into()));
        assert_eq!(serde_json::to_value(&e).unwrap()["type"], "ovn");
        assert_eq!(e.instance(), None);
    }

    #[test]
    fn a_malformed_operation_is_a_decode_error() {
        let e: Event =
            serde_json::from_str(r#"{"type":"operation","metadata":{"status_code":"done"}}"#)
                .unwrap();
        let err = e.operation().unwrap_err();
        assert!(err.to_string().contains("metadata.status_code"), "{err}");
    }
}
