//! The fan-out from the runner to the reporters.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Event, InstanceId, InstanceOutput};
use crate::error::Result;

/// Renders events: the text lines, the log files, JUnit, JSON, the live display.
///
/// A reporter receives every event of a run, in the order they were emitted, one at a time
/// (the bus holds a lock while it calls [`Reporter::report`], so a reporter needs no locking
/// of its own and lines of different instances never interleave mid-line). `report` must not
/// block for long: it runs on the instance's task.
pub trait Reporter: Send {
    /// Renders one event.
    fn report(&mut self, event: &Event);

    /// Called once after the last event: write files, print the summary, clear the display.
    ///
    /// # Errors
    /// When a report cannot be written (naming the path).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

struct Subscribers {
    reporters: Vec<Box<dyn Reporter>>,
}

/// Where the runner emits events: hands each one to every subscribed [`Reporter`], in order.
/// Cheap to clone (shared inside).
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Mutex<Subscribers>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("reporters", &lock(&self.inner).reporters.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A reporter that panicked left at worst a half-written line; keep reporting.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventBus {
    /// A bus with no reporters (events go nowhere until one subscribes).
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Subscribers {
                reporters: Vec::new(),
            })),
        }
    }

    /// Adds a reporter; it sees every event emitted from now on.
    pub fn subscribe(&self, reporter: impl Reporter + 'static) {
        lock(&self.inner).reporters.push(Box::new(reporter));
    }

    /// Hands `event` to every reporter, with every registered secret replaced by `***`
    /// ([`super::redact`]): this is the one redaction point of everything reporters write.
    pub fn emit(&self, event: Event) {
        let event = super::redact::redact_serde(event);
        let mut subs = lock(&self.inner);
        for r in subs.reporters.iter_mut() {
            r.report(&event);
        }
    }

    /// The output handle of one instance: lines its plugins print become
    /// [`Event::Output`]s on this bus.
    pub fn instance(&self, id: InstanceId) -> InstanceOutput {
        InstanceOutput::new(self.clone(), id)
    }

    /// Finishes every reporter (each one, even when an earlier one fails).
    ///
    /// # Errors
    /// The first reporter's error, if any failed.
    pub fn finish(&self) -> Result<()> {
        let mut subs = lock(&self.inner);
        let mut first = Ok(());
        for r in subs.reporters.iter_mut() {
            let result = r.finish();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// A reporter that keeps every event (for tests, and for reporters built after the run).
/// Cheap to clone: clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// The events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }
}

impl Reporter for Recorder {
    fn report(&mut self, event: &Event) {
        lock(&self.events).push(event.clone());
    }
}
