//! The events websocket as a [`futures::Stream`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, WsStream};
use crate::error::{Error, Result};
use crate::models::Event;
use crate::request::RequestSpec;

/// Builder for a subscription to `/1.0/events`: which types, which project, which instance.
///
/// ```no_run
/// # async fn demo(client: lxd_client::Client) -> lxd_client::Result<()> {
/// use lxd_client::prelude::*; // StreamExt, for .next()
/// let mut events = client.events().types(["lifecycle"]).instance("c1").subscribe().await?;
/// while let Some(event) = events.next().await {
///     let event = event?;
///     println!("{} {:?}", event.event_type, event.lifecycle_action());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "call .subscribe()"]
pub struct Events {
    client: Client,
    types: Vec<String>,
    all_projects: bool,
    project: Option<String>,
    instance: Option<String>,
}

impl Events {
    pub(crate) fn new(client: Client) -> Self {
        Events {
            client,
            types: Vec::new(),
            all_projects: false,
            project: None,
            instance: None,
        }
    }

    /// Only these event types (`operation`, `logging`, `lifecycle`); default: all.
    pub fn types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Events of every project, not only the client's.
    pub fn all_projects(mut self, all: bool) -> Self {
        self.all_projects = all;
        self
    }

    /// Events of project `name` instead of the client's (the server filters).
    pub fn project(mut self, name: impl Into<String>) -> Self {
        self.project = Some(name.into());
        self
    }

    /// Only events that concern instance `name` ([`Event::instance`]); LXD has no such
    /// filter, so the stream drops the others.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    pub(crate) fn request(&self) -> RequestSpec {
        let mut spec = RequestSpec::get("/1.0/events");
        if !self.types.is_empty() {
            spec = spec.query("type", self.types.join(","));
        }
        if self.all_projects {
            spec = spec.query("all-projects", "true");
        }
        if let Some(project) = &self.project {
            spec = spec.query("project", project.clone());
        }
        spec
    }

    /// Connects the websocket. Events that happen after this returns are delivered.
    ///
    /// # Errors
    /// Connection or websocket errors.
    pub async fn subscribe(self) -> Result<EventStream> {
        let ws = self.client.websocket(self.request()).await?;
        Ok(EventStream {
            ws,
            instance: self.instance,
        })
    }
}

/// A live stream of [`Event`]s; ends when the server closes the websocket.
pub struct EventStream {
    ws: WsStream,
    /// Keep only events about this instance.
    instance: Option<String>,
}

impl EventStream {
    fn wanted(&self, event: &Result<Event>) -> bool {
        match (&self.instance, event) {
            (Some(name), Ok(event)) => event.instance().as_deref() == Some(name.as_str()),
            _ => true,
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.ws.poll_next_unpin(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) | Poll::Ready(Some(Ok(Message::Close(_)))) => Poll::Ready(None),
                Poll::Ready(Some(Ok(Message::Text(text)))) => {
                    let event = decode(text.as_bytes());
                    if !self.wanted(&event) {
                        continue;
                    }
                    Poll::Ready(Some(event))
                }
                Poll::Ready(Some(Ok(Message::Binary(data)))) => {
                    let event = decode(&data);
                    if !self.wanted(&event) {
                        continue;
                    }
                    Poll::Ready(Some(event))
                }
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::Websocket {
                    what: "/1.0/events".into(),
                    source: e.into(),
                }))),
            };
        }
    }
}

fn decode(message: &[u8]) -> Result<Event> {
    let mut de = serde_json::Deserializer::from_slice(message);
    serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Decode {
        path: "/1.0/events".into(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_request() {
        let client = Client::with_socket("/nonexistent").project("p");
        let spec = client.events().types(["lifecycle", "operation"]).request();
        assert_eq!(
            spec.path_and_query(Some("p")),
            "/1.0/events?type=lifecycle,operation&project=p"
        );
        let spec = client.events().project("q").instance("c1").request();
        assert_eq!(spec.path_and_query(Some("p")), "/1.0/events?project=q");
    }
}
