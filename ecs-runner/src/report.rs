//! Outcomes and reporting: ecs-runner emits kitchen-driver's own [`Event`]s into an
//! [`EventBus`], and kitchen-driver's reporters render them (text lines prefixed by
//! instance, the live display, `.kitchen/logs/`, `--format json`, `--junit`), so both binaries
//! report alike.
//!
//! A task's phases map onto test-kitchen's actions: the entrypoint's converge is the
//! `converge` step, its verify the `verify` step. An instance ends `passed`, `failed` (its
//! tests failed), `errored` (converge broke, the task could not run, or a timeout stopped it)
//! or `cancelled` (interrupted). The exit code is ecs-runner's own ([`exit_code`]): it tells
//! infrastructure errors apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kitchen_driver::events::{
    self, Counts, Event, EventBus, InstanceFinished, InstanceId, InstanceStarted, Level, Outcome,
    OutputLine, OutputStream, Reason, RunFinished, RunStarted, StepFinished, StepStarted,
    TestCaseFinished, Warning,
};
use kitchen_driver::lifecycle::Action;
use kitchen_driver::verifier::{CaseOutcome, CaseResult};
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
    /// Converge or verify failed, or `--timeout` stopped the task.
    Failed,
    /// The task never ran its code to the end (placement, image pull, API, Docker).
    Infrastructure,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

/// What happened to one instance.
#[derive(Debug, Clone)]
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
    pub cases: Vec<CaseResult>,
    /// The phase that failed, when one did.
    pub failed_phase: Option<Phase>,
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
            failed_phase: None,
        }
    }

    /// The event outcome: tests that failed are `failed`, anything else that broke `errored`.
    pub fn outcome(&self) -> Outcome {
        match self.status {
            Status::Passed => Outcome::Passed,
            Status::Interrupted => Outcome::Cancelled {
                cause: kitchen_driver::CancelReason::Interrupted,
            },
            Status::Failed
                if self.failed_phase == Some(Phase::Verify) && !self.stopped_by_runner =>
            {
                Outcome::Failed
            }
            _ => Outcome::Errored,
        }
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

#[derive(Default)]
struct Timing {
    run: Option<Instant>,
    instances: HashMap<String, Instant>,
    steps: HashMap<String, (Action, Instant)>,
    last_action: HashMap<String, Action>,
}

/// Emits a run's events into the bus. Cheap to clone.
#[derive(Clone)]
pub struct Sink {
    bus: EventBus,
    ids: Arc<HashMap<String, InstanceId>>,
    timing: Arc<Mutex<Timing>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

fn action(phase: Phase) -> Action {
    match phase {
        Phase::Converge => Action::Converge,
        Phase::Verify => Action::Verify,
    }
}

impl Sink {
    /// A sink for the given instances (name, suite, platform) emitting into `bus`.
    pub fn new(bus: EventBus, instances: impl IntoIterator<Item = InstanceId>) -> Self {
        Self {
            bus,
            ids: Arc::new(instances.into_iter().map(|i| (i.name.clone(), i)).collect()),
            timing: Arc::default(),
        }
    }

    /// The bus (to finish the reporters at the end).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    fn id(&self, instance: &str) -> InstanceId {
        self.ids
            .get(instance)
            .cloned()
            .unwrap_or_else(|| InstanceId::new("", "", instance))
    }

    fn timing(&self) -> std::sync::MutexGuard<'_, Timing> {
        self.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run began.
    pub fn run_started(&self, run_id: &str, concurrency: usize) {
        self.timing().run = Some(Instant::now());
        let mut instances: Vec<InstanceId> = self.ids.values().cloned().collect();
        instances.sort_by(|a, b| a.name.cmp(&b.name));
        self.bus.emit(Event::RunStarted(RunStarted {
            at: events::now(),
            run_id: run_id.to_owned(),
            command: "run".into(),
            command_line: std::env::args().collect(),
            instances,
            concurrency,
            version: crate::VERSION.into(),
            hostname: events::hostname(),
        }));
    }

    /// A task (or local container) was started for `instance`.
    pub fn task_started(&self, instance: &str, task: &str) {
        self.timing()
            .instances
            .insert(instance.to_owned(), Instant::now());
        self.bus.emit(Event::InstanceStarted(InstanceStarted {
            at: events::now(),
            instance: self.id(instance),
        }));
        self.info(instance, Level::Info, &format!("Task started: {task}"));
    }

    /// A message of ecs-runner's own about `instance`.
    pub fn info(&self, instance: &str, level: Level, text: &str) {
        self.bus.emit(Event::Output(OutputLine {
            at: events::now(),
            instance: self.id(instance),
            stream: OutputStream::Info,
            level,
            text: text.to_owned(),
        }));
    }

    /// A line the task printed.
    pub fn output(&self, instance: &str, line: &str) {
        self.bus.emit(Event::Output(OutputLine {
            at: events::now(),
            instance: self.id(instance),
            stream: OutputStream::Stdout,
            level: Level::Info,
            text: line.to_owned(),
        }));
    }

    /// A phase began in the task.
    pub fn step_started(&self, instance: &str, phase: Phase) {
        let a = action(phase);
        {
            let mut t = self.timing();
            t.steps.insert(instance.to_owned(), (a, Instant::now()));
            t.last_action.insert(instance.to_owned(), a);
        }
        self.bus.emit(Event::StepStarted(StepStarted {
            at: events::now(),
            instance: self.id(instance),
            action: a,
        }));
    }

    /// A phase ended in the task with `exit_code`.
    pub fn step_finished(&self, instance: &str, phase: Phase, exit_code: i32, why: Option<String>) {
        let a = action(phase);
        let started = self.timing().steps.remove(instance).map(|(_, at)| at);
        let outcome = match (exit_code, phase) {
            (0, _) => Outcome::Passed,
            (_, Phase::Verify) => Outcome::Failed,
            (_, Phase::Converge) => Outcome::Errored,
        };
        let reason = (exit_code != 0).then(|| {
            Reason::from_text(
                &why.unwrap_or_else(|| format!("{} exited with code {exit_code}", phase.as_str())),
            )
        });
        self.bus.emit(Event::StepFinished(StepFinished {
            at: events::now(),
            instance: self.id(instance),
            action: a,
            duration: started.map(|s| s.elapsed()).unwrap_or_default(),
            outcome,
            reason,
        }));
    }

    /// A verifier case finished.
    pub fn test_case(&self, instance: &str, case: &CaseResult) {
        self.bus.emit(Event::TestCase(TestCaseFinished {
            at: events::now(),
            instance: self.id(instance),
            name: case.name.clone(),
            file: case.group.clone(),
            line: case.line,
            outcome: case.outcome,
            message: case.message.clone(),
            output: case.output.clone(),
            duration: case.duration,
        }));
    }

    /// A warning, about an instance or the run.
    pub fn warning(&self, instance: Option<&str>, text: &str) {
        self.bus.emit(Event::Warning(Warning {
            at: events::now(),
            instance: instance.map(|i| self.id(i)),
            text: text.to_owned(),
        }));
    }

    /// An instance ended.
    pub fn instance_finished(&self, result: &InstanceResult) {
        let (started, last_action) = {
            let mut t = self.timing();
            // A step still open when the task stopped (interrupt, timeout) ends here.
            if let Some((a, at)) = t.steps.remove(&result.instance) {
                let outcome = result.outcome();
                self.bus.emit(Event::StepFinished(StepFinished {
                    at: events::now(),
                    instance: self.id(&result.instance),
                    action: a,
                    duration: at.elapsed(),
                    outcome: if outcome.is_passed() {
                        Outcome::Errored
                    } else {
                        outcome
                    },
                    reason: result.message.as_deref().map(Reason::from_text),
                }));
            }
            (
                t.instances.get(&result.instance).copied(),
                t.last_action.get(&result.instance).copied(),
            )
        };
        if started.is_none() {
            self.bus.emit(Event::InstanceStarted(InstanceStarted {
                at: events::now(),
                instance: self.id(&result.instance),
            }));
        }
        self.bus.emit(Event::InstanceFinished(InstanceFinished {
            at: events::now(),
            instance: self.id(&result.instance),
            outcome: result.outcome(),
            last_action,
            duration: started.map(|s| s.elapsed()).unwrap_or_default(),
            reason: result.message.as_deref().map(Reason::from_text),
        }));
    }

    /// The run ended with `exit_code`.
    pub fn run_finished(&self, results: &[InstanceResult], exit_code: i32) {
        let mut counts = Counts::default();
        for r in results {
            counts.add(r.outcome());
        }
        let started = self.timing().run;
        self.bus.emit(Event::RunFinished(RunFinished {
            at: events::now(),
            duration: started.map(|s| s.elapsed()).unwrap_or_default(),
            counts,
            exit_code,
        }));
    }
}

/// A case's outcome as text.
pub fn outcome_name(o: &CaseOutcome) -> &'static str {
    match o {
        CaseOutcome::Passed => "passed",
        CaseOutcome::Skipped => "skipped",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitchen_driver::events::Recorder;

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

    #[test]
    fn outcomes_map_onto_kitchen_drivers() {
        let mut verify = InstanceResult::new("i", Status::Failed, Some("1 test(s) failed".into()));
        verify.failed_phase = Some(Phase::Verify);
        assert_eq!(verify.outcome(), Outcome::Failed);
        let mut converge = InstanceResult::new("i", Status::Failed, Some("converge exited".into()));
        converge.failed_phase = Some(Phase::Converge);
        assert_eq!(converge.outcome(), Outcome::Errored);
        assert_eq!(
            InstanceResult::new("i", Status::Infrastructure, None).outcome(),
            Outcome::Errored
        );
        assert!(matches!(
            InstanceResult::new("i", Status::Interrupted, None).outcome(),
            Outcome::Cancelled { .. }
        ));
    }

    #[test]
    fn a_task_becomes_the_events_of_an_instance() {
        let bus = EventBus::new();
        let rec = Recorder::default();
        bus.subscribe(rec.clone());
        let sink = Sink::new(bus, [InstanceId::new("s", "p", "s-p")]);
        sink.run_started("r1", 1);
        sink.task_started("s-p", "arn:task/1");
        sink.step_started("s-p", Phase::Converge);
        sink.output("s-p", "hello");
        sink.step_finished("s-p", Phase::Converge, 3, None);
        let mut r = InstanceResult::new(
            "s-p",
            Status::Failed,
            Some("converge exited with code 3".into()),
        );
        r.failed_phase = Some(Phase::Converge);
        sink.instance_finished(&r);
        sink.run_finished(&[r], 20);
        let kinds: Vec<String> = rec
            .events()
            .iter()
            .map(|e| {
                serde_json::to_value(e).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "run_started",
                "instance_started",
                "output",
                "step_started",
                "output",
                "step_finished",
                "instance_finished",
                "run_finished"
            ]
        );
        let Event::StepFinished(step) = &rec.events()[5] else {
            panic!()
        };
        assert_eq!(
            (step.action, step.outcome),
            (Action::Converge, Outcome::Errored)
        );
        assert_eq!(
            step.reason.as_ref().unwrap().message,
            "converge exited with code 3"
        );
    }
}
