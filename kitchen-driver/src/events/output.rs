//! The emitting side of output: what plugins and drivers write lines to.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Event, EventBus, InstanceId, Level, OutputLine, OutputStream, Warning, now};

/// How many of a step's last output lines a failure carries ([`super::Reason::output_tail`]).
pub const OUTPUT_TAIL_LINES: usize = 50;

/// Where a running command's output goes, one complete line at a time.
pub trait OutputSink: Send + Sync {
    /// One line of output, without its line terminator.
    fn line(&self, stream: OutputStream, line: &str);
}

/// A sink that drops everything (for commands whose output only matters as a value).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl OutputSink for NullSink {
    fn line(&self, _stream: OutputStream, _line: &str) {}
}

/// Splits byte chunks into lines for an [`OutputSink`], keeping the last partial line until
/// more arrives or [`LineSplitter::finish`] is called.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; calls `f` with each complete line (lossy UTF-8, `\r\n` trimmed).
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(&str)) {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            f(text.trim_end_matches('\r'));
        }
    }

    /// Flushes a final line that had no terminator.
    pub fn finish(&mut self, mut f: impl FnMut(&str)) {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            self.buf.clear();
            f(text.trim_end_matches('\r'));
        }
    }
}

/// The output of one instance: every line becomes an [`Event::Output`] (or
/// [`Event::Warning`]) on the bus. It also keeps the last [`OUTPUT_TAIL_LINES`] lines of
/// command output, so a failing step's reason can carry them. Cheap to clone.
#[derive(Clone)]
pub struct InstanceOutput {
    bus: EventBus,
    id: InstanceId,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for InstanceOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceOutput")
            .field("instance", &self.id.name)
            .finish_non_exhaustive()
    }
}

impl InstanceOutput {
    pub(super) fn new(bus: EventBus, id: InstanceId) -> Self {
        Self {
            bus,
            id,
            tail: Arc::default(),
        }
    }

    /// The instance's name.
    pub fn instance(&self) -> &str {
        &self.id.name
    }

    /// The instance's identity.
    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// The bus this output emits into (for the runner's own events).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Emits a message of kitchen-driver's own at `level` (a [`Level::Warn`] becomes an
    /// [`Event::Warning`]).
    pub fn log(&self, level: Level, msg: &str) {
        if level == Level::Warn {
            self.bus.emit(Event::Warning(Warning {
                at: now(),
                instance: Some(self.id.clone()),
                text: msg.to_string(),
            }));
        } else {
            self.emit_line(OutputStream::Info, level, msg);
        }
    }

    /// An informational message (what is being done).
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    /// A debug message (commands run, uploads).
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }

    /// A warning.
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }

    /// An error message.
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }

    /// The command output seen since the last call (at most [`OUTPUT_TAIL_LINES`] lines,
    /// oldest first), emptying the record.
    pub fn take_tail(&self) -> Vec<String> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.drain(..).collect()
    }

    fn emit_line(&self, stream: OutputStream, level: Level, text: &str) {
        self.bus.emit(Event::Output(OutputLine {
            at: now(),
            instance: self.id.clone(),
            stream,
            level,
            text: text.to_string(),
        }));
    }
}

impl OutputSink for InstanceOutput {
    fn line(&self, stream: OutputStream, line: &str) {
        {
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            if tail.len() == OUTPUT_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
        }
        self.emit_line(stream, Level::Info, line);
    }
}
