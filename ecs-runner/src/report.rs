//! Outcomes and reporting: the events a run emits, and the text, JSON-lines and JUnit
//! renderings of them.
//!
//! Text goes through kitchen-driver's own [`kitchen_driver::report::Reporter`] (lines prefixed
//! by instance, `.kitchen/logs/<instance>.log`), so both binaries print alike. `--format json`
//! prints every [`Event`] as one JSON line. JUnit has kitchen-driver's shape: a suite per
//! instance, a case per test, and an instance that failed before any case ran is one failing
//! case named after it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kitchen_driver::report::{InstanceOutput, Level, Reporter};
use kitchen_driver::verifier::{CaseOutcome, CaseResult};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::error::{EXIT_FAILED, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED, EXIT_PASSED};
use crate::transcript::Phase;

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Converge and verify passed.
    Passed,
    /// Converge or verify failed.
    Failed,
    /// The task never ran its code to the end (placement, image pull, API, Docker).
    Infrastructure,
    /// Stopped by Ctrl-C, SIGTERM or `--timeout`.
    Interrupted,
}

/// What happened to one instance.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct InstanceResult {
    /// The instance.
    pub instance: String,
    /// How it ended.
    pub status: Status,
    /// Why, unless it passed.
    pub message: Option<String>,
    /// The task ARN or the local container's ID.
    pub task: Option<String>,
    /// Whether this run stopped the task (interrupt or timeout).
    pub stopped_by_runner: bool,
    /// The cases its verifier reported.
    #[serde(serialize_with = "cases_json")]
    pub cases: Vec<CaseResult>,
}

impl InstanceResult {
    /// A result without cases or task.
    pub fn new(instance: impl Into<String>, status: Status, message: Option<String>) -> Self {
        Self {
            instance: instance.into(),
            status,
            message,
            task: None,
            stopped_by_runner: false,
            cases: Vec::new(),
        }
    }
}

fn cases_json<S: serde::Serializer>(cases: &[CaseResult], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(cases.len()))?;
    for c in cases {
        seq.serialize_element(&CaseJson::from(c))?;
    }
    seq.end()
}

#[derive(Serialize)]
struct CaseJson<'a> {
    name: &'a str,
    outcome: &'static str,
    group: Option<&'a str>,
    duration_ms: Option<u128>,
}

impl<'a> From<&'a CaseResult> for CaseJson<'a> {
    fn from(c: &'a CaseResult) -> Self {
        Self {
            name: &c.name,
            outcome: outcome_name(&c.outcome),
            group: c.group.as_deref(),
            duration_ms: c.duration.map(|d| d.as_millis()),
        }
    }
}

fn outcome_name(o: &CaseOutcome) -> &'static str {
    match o {
        CaseOutcome::Passed => "passed",
        CaseOutcome::Skipped => "skipped",
        _ => "failed",
    }
}

/// The exit code for a finished run: 130 when interrupted, else 20 when an instance failed,
/// else the infrastructure code when a task could not run, else 0.
pub fn exit_code(results: &[InstanceResult]) -> i32 {
    let any = |s: Status| results.iter().any(|r| r.status == s);
    if any(Status::Interrupted) {
        EXIT_INTERRUPTED
    } else if any(Status::Failed) {
        EXIT_FAILED
    } else if any(Status::Infrastructure) {
        EXIT_INFRASTRUCTURE
    } else {
        EXIT_PASSED
    }
}

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run started.
    RunStarted {
        /// The run's ID (`startedBy`, the `kitchen:run` tag).
        run: String,
        /// The instances, in order.
        instances: Vec<String>,
    },
    /// A task was started for an instance.
    TaskStarted {
        /// The instance.
        instance: String,
        /// The task ARN or container ID.
        task: String,
    },
    /// A phase started in the task.
    StepStarted {
        /// The instance.
        instance: String,
        /// The phase.
        step: Phase,
    },
    /// A phase ended in the task.
    StepFinished {
        /// The instance.
        instance: String,
        /// The phase.
        step: Phase,
        /// Its exit code.
        exit_code: i32,
    },
    /// A line of the task's output.
    Output {
        /// The instance.
        instance: String,
        /// The line.
        line: String,
    },
    /// A test case finished.
    TestCase {
        /// The instance.
        instance: String,
        /// The case's name.
        name: String,
        /// `passed`, `failed` or `skipped`.
        outcome: &'static str,
    },
    /// Something worth knowing that does not fail the run (a retry, a stop).
    Warning {
        /// The instance, when one is concerned.
        instance: Option<String>,
        /// The message.
        message: String,
    },
    /// An instance finished.
    InstanceFinished {
        /// The result.
        #[serde(flatten)]
        result: InstanceResult,
    },
    /// The run finished.
    RunFinished {
        /// Instances that passed.
        passed: usize,
        /// Instances that failed.
        failed: usize,
        /// Instances whose task could not run.
        infrastructure: usize,
        /// Instances stopped by an interrupt or timeout.
        interrupted: usize,
        /// The exit code.
        exit_code: i32,
    },
}

/// The output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// Lines prefixed by instance, as kitchen-driver prints them.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Renders events live and to the log files. Cheap to clone.
#[derive(Clone)]
pub struct Sink {
    reporter: Reporter,
    format: Format,
    json_out: Arc<Mutex<Box<dyn Write + Send>>>,
    outputs: Arc<Mutex<std::collections::HashMap<String, InstanceOutput>>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// A sink rendering through `reporter` (text) or as JSON lines to `json_out`.
    pub fn new(reporter: Reporter, format: Format, json_out: Box<dyn Write + Send>) -> Self {
        Self {
            reporter,
            format,
            json_out: Arc::new(Mutex::new(json_out)),
            outputs: Arc::default(),
        }
    }

    fn output(&self, instance: &str) -> Option<InstanceOutput> {
        let mut map = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = map.get(instance) {
            return Some(o.clone());
        }
        let o = self.reporter.instance(instance).ok()?;
        map.insert(instance.to_owned(), o.clone());
        Some(o)
    }

    /// Renders one event.
    pub fn emit(&self, event: Event) {
        if self.format == Format::Json {
            let mut out = self.json_out.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        let text = self.format == Format::Text;
        // Log files get everything in both formats; the live writer only in text format
        // (the JSON sink's reporter is built with a sink writer).
        match &event {
            Event::RunStarted { run, instances } => self.reporter.global(
                Level::Info,
                &format!(
                    "-----> Starting ecs-runner run {run} ({} instances)",
                    instances.len()
                ),
            ),
            Event::TaskStarted { instance, task } => {
                if let Some(o) = self.output(instance) {
                    o.banner(&format!("Task started: {task}"));
                }
            }
            Event::StepStarted { instance, step } => {
                if let Some(o) = self.output(instance) {
                    let verb = match step {
                        Phase::Converge => "Converging",
                        Phase::Verify => "Verifying",
                    };
                    o.banner(&format!("{verb} <{instance}>..."));
                }
            }
            Event::StepFinished {
                instance,
                step,
                exit_code,
            } => {
                if let Some(o) = self.output(instance) {
                    if *exit_code == 0 {
                        o.info(&format!("Finished {} <{instance}>.", step.as_str()));
                    } else {
                        o.error(&format!("{} exited with code {exit_code}", step.as_str()));
                    }
                }
            }
            Event::Output { instance, line } => {
                if let Some(o) = self.output(instance) {
                    o.info(&format!("       {line}"));
                }
            }
            Event::TestCase {
                instance,
                name,
                outcome,
            } => {
                if let Some(o) = self.output(instance) {
                    o.debug(&format!("test {outcome}: {name}"));
                }
            }
            Event::Warning { instance, message } => {
                match instance.as_deref().and_then(|i| self.output(i)) {
                    Some(o) => o.warn(message),
                    None => self.reporter.global(Level::Warn, message),
                }
            }
            Event::InstanceFinished { result } => {
                if let Some(o) = self.output(&result.instance) {
                    match (&result.status, &result.message) {
                        (Status::Passed, _) => o.banner(&format!("Passed <{}>", result.instance)),
                        (s, m) => o.error(&format!(
                            "{} <{}>: {}",
                            match s {
                                Status::Failed => "Failed",
                                Status::Infrastructure => "Infrastructure error on",
                                _ => "Interrupted",
                            },
                            result.instance,
                            m.as_deref().unwrap_or("")
                        )),
                    }
                }
            }
            Event::RunFinished {
                passed,
                failed,
                infrastructure,
                interrupted,
                ..
            } => {
                let _ = text;
                self.reporter.global(
                    Level::Info,
                    &format!(
                        "-----> ecs-runner finished: {passed} passed, {failed} failed, {infrastructure} infrastructure errors, {interrupted} interrupted"
                    ),
                );
            }
        }
    }
}

/// Renders results as JUnit XML in kitchen-driver's shape.
///
/// # Errors
/// Only if the XML writer fails.
pub fn junit(report_name: &str, results: &[InstanceResult]) -> Result<String, String> {
    let mut report = Report::new(report_name);
    for r in results {
        let mut suite = TestSuite::new(r.instance.as_str());
        suite.add_test_cases(r.cases.iter().map(|c| case(&r.instance, c)));
        let a_case_failed = r.cases.iter().any(|c| c.outcome == CaseOutcome::Failed);
        let own = match r.status {
            Status::Passed if r.cases.is_empty() => Some(TestCaseStatus::success()),
            Status::Failed | Status::Infrastructure if !a_case_failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(r.message.clone().unwrap_or_default());
                Some(s)
            }
            Status::Interrupted if r.cases.is_empty() => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.message.clone().unwrap_or_default());
                Some(s)
            }
            _ => None,
        };
        if let Some(status) = own {
            let mut tc = TestCase::new(r.instance.as_str(), status);
            tc.set_classname(r.instance.as_str());
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| e.to_string())
}

fn case(instance: &str, c: &CaseResult) -> TestCase {
    let status = match c.outcome {
        CaseOutcome::Passed => TestCaseStatus::success(),
        CaseOutcome::Skipped => TestCaseStatus::skipped(),
        _ => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("{} failed", c.name));
            s
        }
    };
    let mut tc = TestCase::new(c.name.as_str(), status);
    tc.set_classname(instance);
    if let Some(d) = c.duration {
        tc.set_time(d);
    }
    if !c.output.is_empty() {
        tc.set_system_out(c.output.as_str());
    }
    tc
}

/// Duration as seconds with millisecond precision, for summaries.
pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_has_kitchen_drivers_shape() {
        let mut ok = InstanceResult::new("default-debian", Status::Passed, None);
        ok.cases = vec![CaseResult::new("works", CaseOutcome::Passed, "")];
        let converge = InstanceResult::new(
            "default-busybox",
            Status::Failed,
            Some("converge exited with code 3".into()),
        );
        let mut verify = InstanceResult::new(
            "web-debian",
            Status::Failed,
            Some("1 test(s) failed".into()),
        );
        verify.cases = vec![CaseResult::new("serves", CaseOutcome::Failed, "not ok 1")];
        let green = InstanceResult::new("a-b", Status::Passed, None);
        let xml = junit("ecs-runner", &[ok, converge, verify, green]).unwrap();
        assert!(
            xml.contains(r#"<testsuites name="ecs-runner" tests="4" failures="1" errors="1">"#)
                || xml.contains(r#"tests="4""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="works" classname="default-debian"/>"#),
            "{xml}"
        );
        assert!(xml.contains("converge exited with code 3"), "{xml}");
        assert!(!xml.contains(r#"<testcase name="web-debian""#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="a-b" classname="a-b"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn exit_codes_rank_interrupt_then_failure_then_infrastructure() {
        let r = |s| InstanceResult::new("i", s, None);
        assert_eq!(exit_code(&[r(Status::Passed)]), 0);
        assert_eq!(
            exit_code(&[r(Status::Infrastructure), r(Status::Passed)]),
            30
        );
        assert_eq!(
            exit_code(&[r(Status::Infrastructure), r(Status::Failed)]),
            20
        );
        assert_eq!(exit_code(&[r(Status::Failed), r(Status::Interrupted)]), 130);
    }
}
