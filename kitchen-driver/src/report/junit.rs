//! The JUnit XML report (`--junit PATH`): what CI systems read.
//!
//! Built from the run's events, valid against the JUnit schema Jenkins' xunit plugin uses
//! (`junit-10.xsd`, vendored in `kitchen-driver/tests/schema/`), and laid out for the readers
//! CI engineers use (dorny/test-reporter, mikepenz/action-junit-report, GitLab, Jenkins):
//!
//! - one `<testsuite>` per instance, with `time`, `timestamp`, `hostname`, and properties
//!   for the suite, the platform, each step's duration (`step.converge.seconds`) and the
//!   resources sampled (a step run twice, as `test`'s destroy, is `step.destroy.2.seconds`); the instance's stdout (and kitchen-driver's own lines) in
//!   `<system-out>`, its stderr in `<system-err>`;
//! - one `<testcase>` per verifier case, `classname="suite.platform"`, a `time` on each; a
//!   failing case is a `<failure>` whose `message` is the assertion and whose body is the
//!   case's output (for bats, with `(in test file x.bats, line 10)`); a skip is
//!   `<skipped message="...">`. Case names are unique within an instance: when two files
//!   share a test name, the name says which file;
//! - a failure no case explains gets a case of its own, named after the step that broke:
//!   an `<error>` when create, converge, a hook or destroy broke (or the verifier could not
//!   run), a `<failure>` when the verifier failed without naming cases (the shell verifier).
//!   `message` is the first line of the reason, the body the last lines of the step's
//!   output. An instance that passed without cases is one passing case named `verify`
//!   (or its last action); a cancelled one is a `<skipped>` case.
//!
//! junit-10.xsd allows no `file` or `line` attribute on `<testcase>` and no `skipped` on
//! `<testsuites>`: the file and line are in the failure body and message instead, and the
//! `skipped` count quick-junit writes on `<testsuites>` is dropped.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::error::{Error, Result};
use crate::events::{
    Event, InstanceFinished, InstanceId, Outcome, OutputStream, Reason, Reporter, TestCaseFinished,
    Timestamp,
};
use crate::lifecycle::Action;
use crate::verifier::CaseOutcome;

/// The report's name (`<testsuites name=...>`).
pub const REPORT_NAME: &str = "kitchen-driver";

#[derive(Debug, Clone)]
struct Step {
    action: Action,
    duration: Duration,
    outcome: Outcome,
    reason: Option<Reason>,
}

#[derive(Debug, Clone)]
struct InstanceRecord {
    id: InstanceId,
    started: Option<Timestamp>,
    steps: Vec<Step>,
    cases: Vec<TestCaseFinished>,
    stdout: String,
    stderr: String,
    peak_memory_bytes: Option<u64>,
    cpu_time: Option<Duration>,
    finished: Option<InstanceFinished>,
}

/// Collects what the report needs from the events.
#[derive(Debug, Default, Clone)]
pub struct JunitBuilder {
    /// The program that ran, the report's name (`kitchen-driver` until the run says).
    program: Option<String>,
    hostname: Option<String>,
    run_duration: Option<Duration>,
    order: Vec<String>,
    instances: HashMap<String, InstanceRecord>,
}

impl JunitBuilder {
    fn record(&mut self, id: &InstanceId) -> &mut InstanceRecord {
        if !self.instances.contains_key(&id.name) {
            self.order.push(id.name.clone());
        }
        self.instances
            .entry(id.name.clone())
            .or_insert_with(|| InstanceRecord {
                id: id.clone(),
                started: None,
                steps: Vec::new(),
                cases: Vec::new(),
                stdout: String::new(),
                stderr: String::new(),
                peak_memory_bytes: None,
                cpu_time: None,
                finished: None,
            })
    }

    /// Takes one event into account.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::RunStarted(e) => {
                self.program = Some(e.program());
                self.hostname = Some(e.hostname.clone()).filter(|h| !h.is_empty());
                for i in &e.instances {
                    self.record(i);
                }
            }
            Event::InstanceStarted(e) => self.record(&e.instance).started = Some(e.at),
            Event::StepFinished(e) => self.record(&e.instance).steps.push(Step {
                action: e.action,
                duration: e.duration,
                outcome: e.outcome,
                reason: e.reason.clone(),
            }),
            Event::Output(o) => {
                let r = self.record(&o.instance);
                let buf = match o.stream {
                    OutputStream::Stderr => &mut r.stderr,
                    _ => &mut r.stdout,
                };
                buf.push_str(&o.text);
                buf.push('\n');
            }
            Event::TestCase(c) => self.record(&c.instance).cases.push(c.clone()),
            Event::ResourceSample(s) => {
                let r = self.record(&s.instance);
                if let Some(m) = s.peak_memory_bytes {
                    r.peak_memory_bytes = Some(r.peak_memory_bytes.unwrap_or(0).max(m));
                }
                if s.cpu_time.is_some() {
                    r.cpu_time = s.cpu_time;
                }
            }
            Event::InstanceFinished(e) => self.record(&e.instance).finished = Some(e.clone()),
            Event::RunFinished(e) => self.run_duration = Some(e.duration),
            _ => {}
        }
    }

    /// The report as XML.
    ///
    /// # Errors
    /// Only if the XML writer fails, which it does not for in-memory strings.
    pub fn render(&self) -> Result<String> {
        let mut report = Report::new(self.program.as_deref().unwrap_or(REPORT_NAME));
        let mut total = Duration::ZERO;
        for name in &self.order {
            let r = &self.instances[name];
            let suite = self.suite(r);
            total += suite.time.unwrap_or_default();
            report.add_test_suite(suite);
        }
        report.set_time(self.run_duration.unwrap_or(total));
        let xml = report.to_string().map_err(|e| Error::Report {
            what: "the JUnit report".into(),
            source: Box::new(e),
        })?;
        Ok(drop_testsuites_skipped(&xml))
    }

    fn suite(&self, r: &InstanceRecord) -> TestSuite {
        let mut suite = TestSuite::new(r.id.name.as_str());
        if let Some(at) = r.started {
            suite.set_timestamp(at.fixed_offset());
        }
        let duration = r
            .finished
            .as_ref()
            .map(|f| f.duration)
            .unwrap_or_else(|| r.steps.iter().map(|s| s.duration).sum());
        suite.set_time(duration);
        if let Some(h) = &self.hostname {
            suite.extra.insert("hostname".into(), h.as_str().into());
        }
        suite.add_property(("suite", r.id.suite.as_str()));
        suite.add_property(("platform", r.id.platform.as_str()));
        let mut runs: HashMap<Action, usize> = HashMap::new();
        for s in &r.steps {
            // `test` destroys twice (cleaning up, then at the end): the second is `.2`.
            let n = runs.entry(s.action).or_insert(0);
            *n += 1;
            let key = match *n {
                1 => format!("step.{}.seconds", s.action),
                n => format!("step.{}.{n}.seconds", s.action),
            };
            suite.add_property((
                key.as_str(),
                format!("{:.3}", s.duration.as_secs_f64()).as_str(),
            ));
        }
        if let Some(m) = r.peak_memory_bytes {
            suite.add_property(("peak_memory_bytes", m.to_string().as_str()));
        }
        if let Some(c) = r.cpu_time {
            suite.add_property((
                "cpu_time_seconds",
                format!("{:.3}", c.as_secs_f64()).as_str(),
            ));
        }
        let classname = r.id.classname();
        let names = unique_names(&r.cases);
        for (c, name) in r.cases.iter().zip(names) {
            suite.add_test_case(case(c, name, &classname));
        }
        if let Some(own) = instance_case(r, &classname) {
            suite.add_test_case(own);
        }
        if !r.stdout.is_empty() {
            suite.set_system_out(r.stdout.as_str());
        }
        if !r.stderr.is_empty() {
            suite.set_system_err(r.stderr.as_str());
        }
        suite
    }
}

/// Case names, unique within an instance: a name two files share says which file
/// (`checks.bats: serves /`), and any name still repeated gets ` (2)`, ` (3)`...
fn unique_names(cases: &[TestCaseFinished]) -> Vec<String> {
    let mut files_of: HashMap<&str, HashSet<Option<&str>>> = HashMap::new();
    for c in cases {
        files_of
            .entry(c.name.as_str())
            .or_default()
            .insert(c.file.as_deref());
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    cases
        .iter()
        .map(|c| {
            let base = match &c.file {
                Some(f) if files_of[c.name.as_str()].len() > 1 => format!("{f}: {}", c.name),
                _ => c.name.clone(),
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base} ({n})")
            }
        })
        .collect()
}

fn case(c: &TestCaseFinished, name: String, classname: &str) -> TestCase {
    let status = match c.outcome {
        CaseOutcome::Passed => TestCaseStatus::success(),
        CaseOutcome::Skipped => {
            let mut s = TestCaseStatus::skipped();
            if let Some(m) = &c.message {
                s.set_message(m.as_str());
            }
            s
        }
        _ => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let message = c
                .message
                .clone()
                .unwrap_or_else(|| format!("{} failed", c.name));
            let location = match (&c.file, c.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            s.set_message(format!("{location}{}", first_line(&message)));
            s.set_type("assertion");
            s.set_description(if c.output.is_empty() {
                message
            } else {
                c.output.clone()
            });
            s
        }
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(classname);
    tc.set_time(c.duration.unwrap_or_default());
    tc
}

/// The case for what no verifier case explains (see the module documentation).
fn instance_case(r: &InstanceRecord, classname: &str) -> Option<TestCase> {
    let finished = r.finished.as_ref();
    let outcome = finished.map(|f| f.outcome).unwrap_or(Outcome::Cancelled {
        cause: crate::events::CancelReason::Interrupted,
    });
    let failing_step = r.steps.iter().find(|s| s.outcome.is_failure());
    let a_case_failed = r.cases.iter().any(|c| c.outcome == CaseOutcome::Failed);
    let step_named = |action: Action| r.steps.iter().rev().find(|s| s.action == action);
    let (name, time, status) = match outcome {
        Outcome::Passed if !r.cases.is_empty() => return None,
        Outcome::Passed => {
            let step = step_named(Action::Verify).or(r.steps.last());
            let name = step
                .map(|s| s.action.to_string())
                .unwrap_or_else(|| "run".into());
            (name, step.map(|s| s.duration), TestCaseStatus::success())
        }
        Outcome::Failed if a_case_failed => return None,
        Outcome::Failed | Outcome::Errored => {
            let kind = if outcome == Outcome::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let reason = failing_step
                .and_then(|s| s.reason.clone())
                .or_else(|| finished.and_then(|f| f.reason.clone()))
                .unwrap_or_default();
            let action = failing_step
                .map(|s| s.action)
                .or(finished.and_then(|f| f.last_action));
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(reason.message.as_str());
            s.set_type(action.map(|a| a.as_str()).unwrap_or("run"));
            s.set_description(failure_body(&reason));
            let name = action
                .map(|a| a.to_string())
                .unwrap_or_else(|| "run".into());
            (name, failing_step.map(|s| s.duration), s)
        }
        Outcome::Cancelled { cause } => {
            let mut s = TestCaseStatus::skipped();
            let before = finished
                .and_then(|f| f.last_action)
                .map(|a| format!(" (at {a})"))
                .unwrap_or_default();
            s.set_message(format!("{cause}{before}"));
            (
                finished
                    .and_then(|f| f.last_action)
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "run".into()),
                None,
                s,
            )
        }
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(classname);
    tc.set_time(time.unwrap_or_default());
    Some(tc)
}

/// A failure's body: the rest of the reason, then the last lines of output.
fn failure_body(reason: &Reason) -> String {
    let mut body = String::new();
    if let Some(d) = &reason.detail {
        body.push_str(d);
        body.push('\n');
    }
    if !reason.output_tail.is_empty() {
        if !body.is_empty() {
            body.push('\n');
        }
        for l in &reason.output_tail {
            body.push_str(l);
            body.push('\n');
        }
    }
    if body.is_empty() {
        body = reason.message.clone();
    }
    body
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// junit-10.xsd has no `skipped` attribute on `<testsuites>` (only on `<testsuite>`), and
/// quick-junit always writes one: drop it from the root element.
fn drop_testsuites_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let Some(len) = xml[start..].find('>') else {
        return xml.to_string();
    };
    let tag = &xml[start..start + len];
    let cleaned = match tag.find(" skipped=\"") {
        Some(i) => {
            let rest = &tag[i + " skipped=\"".len()..];
            let end = rest.find('"').map(|e| e + 1).unwrap_or(rest.len());
            format!("{}{}", &tag[..i], &rest[end..])
        }
        None => tag.to_string(),
    };
    format!("{}{cleaned}{}", &xml[..start], &xml[start + len..])
}

/// Collects the events and writes the report when the run ends.
#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
    builder: JunitBuilder,
}

impl JunitReporter {
    /// A reporter writing to `path` (its directory is created when missing).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            builder: JunitBuilder::default(),
        }
    }
}

impl Reporter for JunitReporter {
    fn report(&mut self, event: &Event) {
        self.builder.observe(event);
    }

    fn finish(&mut self) -> Result<()> {
        let xml = self.builder.render()?;
        super::write_atomically(&self.path, &xml)
    }
}

/// The report of recorded events.
///
/// # Errors
/// As [`JunitBuilder::render`].
pub fn render<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<String> {
    let mut b = JunitBuilder::default();
    for e in events {
        b.observe(e);
    }
    b.render()
}
