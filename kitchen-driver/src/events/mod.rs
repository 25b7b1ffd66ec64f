//! Run events: what happened during a run, as typed values that every reporter renders.
//!
//! The runner never formats output. It emits [`Event`]s into an [`EventBus`]; each
//! [`Reporter`] subscribed to the bus renders them its own way (the text lines on stdout, the
//! log files, JUnit, JSON lines, the live display, the closing summary). This is the model
//! cargo-nextest follows (`reporter/events.rs` feeds both its progress display and its JUnit
//! aggregator).
//!
//! The model is runtime-neutral: it names instances by suite, platform and instance name
//! ([`InstanceId`]) and never mentions Docker, LXD or ECS, so `ecs-runner` emits the same
//! events from ECS tasks and reuses the same reporters.
//!
//! Every event serialises to one JSON object with an `event` tag (`"run_started"`,
//! `"step_finished"` ...); a stream of them is versioned by [`SCHEMA_VERSION`] (see
//! [`JsonRecord`] and `kitchen-driver/EVENTS.md`, which documents each field).
//!
//! ```
//! use kitchen_driver::events::{
//!     Event, EventBus, InstanceId, Level, OutputSink, OutputStream, Recorder,
//! };
//!
//! let recorder = Recorder::default();
//! let bus = EventBus::new();
//! bus.subscribe(recorder.clone());
//! let output = bus.instance(InstanceId::new("default", "busybox", "default-busybox"));
//! output.line(OutputStream::Stdout, "hello");
//! output.log(Level::Debug, "exec: true");
//! assert_eq!(recorder.events().len(), 2);
//! assert!(matches!(&recorder.events()[0], Event::Output(o) if o.text == "hello"));
//! ```

mod bus;
mod output;
pub mod redact;
pub mod serde_secs;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::InstanceConfig;
pub use crate::error::CancelReason;
use crate::lifecycle::Action;
use crate::verifier::CaseOutcome;

pub use bus::{EventBus, Recorder, Reporter};
pub use output::{InstanceOutput, LineSplitter, NullSink, OUTPUT_TAIL_LINES, OutputSink};

/// The version of the event schema. It grows when a field changes meaning or goes away
/// (adding a field or an event kind does not change it: readers must ignore what they do not
/// know).
pub const SCHEMA_VERSION: u32 = 1;

/// A point in time, UTC, to the millisecond. Serialised as RFC 3339 (`2026-12-01T11:46:36.123Z`;
/// the fraction is left out when it is zero).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// This host's name (for [`RunStarted::hostname`]): the kernel's, else `$HOSTNAME`, else
/// `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Now, to the millisecond (what every event records).
pub fn now() -> Timestamp {
    let t = chrono::Utc::now();
    // Nanoseconds would make equal logs differ only by noise; milliseconds are what is shown.
    t - Duration::from_nanos(u64::from(t.timestamp_subsec_nanos() % 1_000_000))
}

/// Which instance an event is about: its suite, platform and full name (`<suite>-<platform>`
/// as test-kitchen builds it, or whatever name the runtime gave it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId {
    /// The instance name (`default-busybox`).
    pub name: String,
    /// The suite (`default`).
    pub suite: String,
    /// The platform (`busybox`).
    pub platform: String,
}

impl InstanceId {
    /// An instance identity.
    pub fn new(
        suite: impl Into<String>,
        platform: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            suite: suite.into(),
            platform: platform.into(),
        }
    }

    /// `suite.platform`: the class name CI report readers group cases by.
    pub fn classname(&self) -> String {
        format!("{}.{}", self.suite, self.platform)
    }
}

impl From<&InstanceConfig> for InstanceId {
    fn from(inst: &InstanceConfig) -> Self {
        Self::new(&inst.suite, &inst.platform, &inst.name)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputStream {
    /// A command's standard output.
    Stdout,
    /// A command's standard error.
    Stderr,
    /// A message from kitchen-driver or a plugin itself (commands run, files uploaded).
    Info,
}

impl OutputStream {
    /// `stdout`, `stderr` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::Info => "info",
        }
    }
}

/// How important a line is (`-l/--log-level`). Log files get every level; the live output
/// the chosen one and above.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Level {
    /// Commands run, files uploaded, state changes.
    Debug,
    /// Banners and command output.
    #[default]
    Info,
    /// Problems that do not fail the action.
    Warn,
    /// Failures.
    Error,
}

impl Level {
    /// Parses test-kitchen's level names (`debug`, `info`, `warn`, `error`, `fatal`).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" | "fatal" => Some(Level::Error),
            _ => None,
        }
    }

    /// `DEBUG`, `INFO`, `WARN` or `ERROR`, as log files write it.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// How a step, hook or instance ended. Serialised flattened into its event:
/// `"outcome": "passed"`, or `"outcome": "cancelled", "cause": "interrupt"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// It worked.
    Passed,
    /// The tests ran and some failed (a verifier reported failures): a JUnit `<failure>`.
    Failed,
    /// It broke before or outside the tests (create, converge, a hook, a verifier that could
    /// not run): a JUnit `<error>`.
    Errored,
    /// It did not run, or stopped between steps.
    Cancelled {
        /// What cancelled it (`interrupted`: Ctrl-C; `fail_fast`: `--fail-fast`).
        cause: CancelReason,
    },
}

impl Outcome {
    /// Passed.
    pub fn is_passed(self) -> bool {
        self == Outcome::Passed
    }

    /// Failed or errored (cancellation is not a failure of its own).
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Errored)
    }

    /// `passed`, `failed`, `errored` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Errored => "errored",
            Outcome::Cancelled { .. } => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why something did not pass: what CI annotations, JUnit `message`s and the summary show.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reason {
    /// The first line of the error (a JUnit `message`).
    pub message: String,
    /// The rest of the error, when it has more than one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The last lines (at most [`OUTPUT_TAIL_LINES`]) the failing step printed, stdout and
    /// stderr in the order they arrived (a JUnit failure's body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_tail: Vec<String>,
}

impl Reason {
    /// A reason from an error's text: its first line is the message, the rest the detail.
    pub fn from_text(text: &str) -> Self {
        let mut lines = text.trim_end().splitn(2, '\n');
        let message = lines.next().unwrap_or("").trim_end().to_string();
        let detail = lines
            .next()
            .map(|d| d.trim_end().to_string())
            .filter(|d| !d.is_empty());
        Self {
            message,
            detail,
            output_tail: Vec::new(),
        }
    }

    /// Sets the output tail.
    pub fn with_output_tail(mut self, tail: Vec<String>) -> Self {
        self.output_tail = tail;
        self
    }
}

/// When a hook runs relative to its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HookPhase {
    /// `pre_<action>`.
    Pre,
    /// `post_<action>`.
    Post,
    /// `finally_<action>`.
    Finally,
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookPhase::Pre => "pre",
            HookPhase::Post => "post",
            HookPhase::Finally => "finally",
        })
    }
}

/// A run began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    /// When.
    pub at: Timestamp,
    /// A unique id for this run (also in the log file headers).
    pub run_id: String,
    /// The command (`test`, `converge`, `exec` ...).
    pub command: String,
    /// The full command line, program name first.
    #[serde(default)]
    pub command_line: Vec<String>,
    /// The selected instances, in the order given.
    pub instances: Vec<InstanceId>,
    /// How many instances run at once.
    pub concurrency: usize,
    /// The version of the program that runs (kitchen-driver's or ecs-runner's).
    pub version: String,
    /// The host the run is on (JUnit's `hostname`).
    #[serde(default)]
    pub hostname: String,
}

impl RunStarted {
    /// The program that runs (`kitchen-driver`, `ecs-runner`): the file name of the command
    /// line's first word, for the reports' titles.
    pub fn program(&self) -> String {
        self.command_line
            .first()
            .and_then(|p| std::path::Path::new(p).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "kitchen-driver".to_string())
    }
}

/// An instance's task began (it holds its lock and is about to run its first step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStarted {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
}

/// A lifecycle step began on an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStarted {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// The action (`create`, `converge`, `setup`, `verify`, `destroy`).
    #[serde(with = "action_name")]
    pub action: Action,
}

/// A lifecycle step ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFinished {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// The action.
    #[serde(with = "action_name")]
    pub action: Action,
    /// How long it took, hooks included (seconds, in JSON).
    #[serde(with = "serde_secs")]
    pub duration: Duration,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Why it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// A lifecycle hook began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookStarted {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// The action the hook belongs to.
    #[serde(with = "action_name")]
    pub action: Action,
    /// Before, after, or finally.
    pub phase: HookPhase,
    /// The command, as it runs.
    pub command: String,
    /// Whether it runs on the host (`local`) rather than in the instance (`remote`).
    pub local: bool,
}

/// A lifecycle hook ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookFinished {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// The action the hook belongs to.
    #[serde(with = "action_name")]
    pub action: Action,
    /// Before, after, or finally.
    pub phase: HookPhase,
    /// The command.
    pub command: String,
    /// How long it took.
    #[serde(with = "serde_secs")]
    pub duration: Duration,
    /// How it ended (a `skippable` hook that failed is `passed`, with a warning before it).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Why it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputLine {
    /// When it arrived.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// Which stream.
    pub stream: OutputStream,
    /// How important (command output is `info`).
    #[serde(default)]
    pub level: Level,
    /// The line, without its terminator.
    pub text: String,
}

/// A problem that does not fail anything (a leftover container removed, a skippable hook
/// that failed, a deprecated setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// When.
    pub at: Timestamp,
    /// Which instance, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    /// What happened.
    pub text: String,
}

/// One test case a verifier ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseFinished {
    /// When it was reported.
    pub at: Timestamp,
    /// Which instance (its suite and platform are the case's class name).
    pub instance: InstanceId,
    /// The case's name (unique within the instance).
    pub name: String,
    /// The test file, when the verifier knows it (`checks.bats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in `file` of the failing assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// `passed`, `failed` or `skipped`.
    pub outcome: CaseOutcome,
    /// Why it failed or was skipped (the assertion, the skip reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The case's own output (diagnostics).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// How long it ran, when the verifier reports it.
    #[serde(
        default,
        with = "serde_secs::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
}

/// What an instance used while a step ran, sampled from the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// When the sample was taken.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// The step it was taken during.
    #[serde(with = "action_name")]
    pub action: Action,
    /// The highest memory use seen so far, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// CPU time used so far.
    #[serde(
        default,
        with = "serde_secs::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_time: Option<Duration>,
}

/// An instance's task ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceFinished {
    /// When.
    pub at: Timestamp,
    /// Which instance.
    pub instance: InstanceId,
    /// How it ended: failed when a verifier found failures, errored when anything else broke.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The last action attempted, if any step ran.
    #[serde(
        default,
        with = "action_name::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_action: Option<Action>,
    /// How long its task ran.
    #[serde(with = "serde_secs")]
    pub duration: Duration,
    /// Why it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// How many instances ended which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Instances in the run.
    pub instances: usize,
    /// Passed.
    pub passed: usize,
    /// Failed as a test failure.
    pub failed: usize,
    /// Errored.
    pub errored: usize,
    /// Cancelled before or between steps.
    pub cancelled: usize,
}

impl Counts {
    /// Adds one instance's outcome.
    pub fn add(&mut self, outcome: Outcome) {
        self.instances += 1;
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Errored => self.errored += 1,
            Outcome::Cancelled { .. } => self.cancelled += 1,
        }
    }
}

/// The run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// When.
    pub at: Timestamp,
    /// How long the run took.
    #[serde(with = "serde_secs")]
    pub duration: Duration,
    /// How the instances ended.
    pub counts: Counts,
    /// The process exit code the run ends with.
    pub exit_code: i32,
}

/// Something that happened during a run. Serialised with an `event` tag naming the variant in
/// snake case (`{"event":"step_started",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run began.
    RunStarted(RunStarted),
    /// An instance's task began.
    InstanceStarted(InstanceStarted),
    /// A step began.
    StepStarted(StepStarted),
    /// A step ended.
    StepFinished(StepFinished),
    /// A hook began.
    HookStarted(HookStarted),
    /// A hook ended.
    HookFinished(HookFinished),
    /// A line of output.
    Output(OutputLine),
    /// A warning.
    Warning(Warning),
    /// A verifier's test case ended.
    TestCase(TestCaseFinished),
    /// A resource use sample.
    ResourceSample(ResourceSample),
    /// An instance's task ended.
    InstanceFinished(InstanceFinished),
    /// The run ended.
    RunFinished(RunFinished),
}

impl Event {
    /// The instance the event is about, if any.
    pub fn instance(&self) -> Option<&InstanceId> {
        match self {
            Event::RunStarted(_) | Event::RunFinished(_) => None,
            Event::InstanceStarted(e) => Some(&e.instance),
            Event::StepStarted(e) => Some(&e.instance),
            Event::StepFinished(e) => Some(&e.instance),
            Event::HookStarted(e) => Some(&e.instance),
            Event::HookFinished(e) => Some(&e.instance),
            Event::Output(e) => Some(&e.instance),
            Event::Warning(e) => e.instance.as_ref(),
            Event::TestCase(e) => Some(&e.instance),
            Event::ResourceSample(e) => Some(&e.instance),
            Event::InstanceFinished(e) => Some(&e.instance),
        }
    }

    /// When it happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Event::RunStarted(e) => e.at,
            Event::InstanceStarted(e) => e.at,
            Event::StepStarted(e) => e.at,
            Event::StepFinished(e) => e.at,
            Event::HookStarted(e) => e.at,
            Event::HookFinished(e) => e.at,
            Event::Output(e) => e.at,
            Event::Warning(e) => e.at,
            Event::TestCase(e) => e.at,
            Event::ResourceSample(e) => e.at,
            Event::InstanceFinished(e) => e.at,
            Event::RunFinished(e) => e.at,
        }
    }
}

/// One line of `--format json`: the schema version beside the event's fields
/// (`{"v":1,"event":"output",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRecord {
    /// [`SCHEMA_VERSION`].
    pub v: u32,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

impl JsonRecord {
    /// The record of `event` at the current schema version.
    pub fn new(event: Event) -> Self {
        Self {
            v: SCHEMA_VERSION,
            event,
        }
    }
}

/// Serialises an [`Action`] by its name (`converge`).
mod action_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::lifecycle::Action;

    pub fn serialize<S: Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(a: &Option<Action>, s: S) -> Result<S::Ok, S::Error> {
            match a {
                Some(a) => s.serialize_some(a.as_str()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Action>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|n| n.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests;
