//! `--format json`: every event as one JSON object on its own line (documented field by field
//! in `kitchen-driver/EVENTS.md`).

use std::io::Write;

use serde::Serialize;

use crate::error::Result;
use crate::events::{Event, Reporter, SCHEMA_VERSION};

/// The wire form of one event: [`crate::events::JsonRecord`] without the clone.
#[derive(Serialize)]
struct Record<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

/// One JSON line per event, each with the schema version `v`.
pub fn line(event: &Event) -> String {
    serde_json::to_string(&Record {
        v: SCHEMA_VERSION,
        event,
    })
    // Events hold only strings, numbers and timestamps: serialising them cannot fail.
    .unwrap_or_default()
}

/// Writes [`line()`]s to a writer (stdout), flushing after each so a reader sees events live.
pub struct JsonLines {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines").finish_non_exhaustive()
    }
}

impl JsonLines {
    /// A reporter writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }
}

impl Reporter for JsonLines {
    fn report(&mut self, event: &Event) {
        let _ = writeln!(self.out, "{}", line(event));
        let _ = self.out.flush();
    }

    fn finish(&mut self) -> Result<()> {
        let _ = self.out.flush();
        Ok(())
    }
}
