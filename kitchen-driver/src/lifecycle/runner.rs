//! Running a command on many instances at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::hooks::{HookCommand, Hooks, Phase};
use super::sampler::Sampler;
use super::{Action, steps};
use crate::config::InstanceConfig;
use crate::converge_cache::{self, ConvergePlan};
use crate::driver::Driver;
use crate::error::{CancelReason, Error, Result};
use crate::events::{
    self, Event, EventBus, HookFinished, HookPhase, HookStarted, InstanceFinished, InstanceId,
    InstanceOutput, InstanceStarted, Outcome, Reason, RunStarted, StepFinished, StepStarted,
    TestCaseFinished,
};
use crate::host::HostCommand;
use crate::plugin::InstanceContext;
use crate::state::{State, StateFile, keys};
use crate::transport::{self, Connection, ExecRequest};
use crate::verifier::CaseResult;
use crate::{provisioner, verifier};

/// `test --destroy`: when to destroy the instance at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DestroyMode {
    /// Only when the test passed (test-kitchen's default).
    #[default]
    Passing,
    /// Always, even after a failure.
    Always,
    /// Never: keep the instance for inspection.
    Never,
}

impl std::str::FromStr for DestroyMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "passing" => Ok(DestroyMode::Passing),
            "always" => Ok(DestroyMode::Always),
            "never" => Ok(DestroyMode::Never),
            other => Err(format!(
                "--destroy must be passing, always or never, not `{other}`"
            )),
        }
    }
}

/// What to do to each selected instance.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Take the instance to this action (running earlier steps as needed).
    Action(Action),
    /// destroy, create..verify, then destroy per the mode.
    Test(DestroyMode),
    /// Run a command in each (created) instance.
    Exec(String),
    /// Return each created instance to its state right after create ([`Driver::reset`]).
    Reset,
}

impl Command {
    /// The command's name on the command line (`converge`, `test`, `exec`), as
    /// [`events::RunStarted::command`] records it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Action(a) => a.as_str(),
            Command::Test(_) => "test",
            Command::Exec(_) => "exec",
            Command::Reset => "reset",
        }
    }
}

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// How many instances at once (at least 1).
    pub concurrency: usize,
    /// After the first failure, start no further step on any instance.
    pub fail_fast: bool,
    /// The time limit of each step (`--step-timeout`); wins over an instance's
    /// `step_timeout`. `None`: the instance's own, or no limit.
    pub step_timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            fail_fast: false,
            step_timeout: None,
        }
    }
}

impl RunOptions {
    /// Options with this concurrency and fail-fast setting.
    pub fn new(concurrency: usize, fail_fast: bool) -> Self {
        Self {
            concurrency: concurrency.max(1),
            fail_fast,
            step_timeout: None,
        }
    }

    /// Limits every step of every instance to `limit` (`None`: each instance's
    /// `step_timeout`, or no limit).
    #[must_use]
    pub fn with_step_timeout(mut self, limit: Option<Duration>) -> Self {
        self.step_timeout = limit;
        self
    }
}

/// The key of a platform's or suite's `driver:` block that limits each step of the instance,
/// in seconds (as `--step-timeout`, which wins over it).
pub const STEP_TIMEOUT_KEY: &str = "step_timeout";

/// An instance's `step_timeout` (seconds, a positive number), if set.
///
/// # Errors
/// [`Error::Config`] for anything but a positive number of seconds that a [`Duration`] holds.
pub fn step_timeout_of(inst: &InstanceConfig) -> Result<Option<Duration>> {
    let Some(value) = inst.driver.get(STEP_TIMEOUT_KEY) else {
        return Ok(None);
    };
    if value.is_null() {
        return Ok(None);
    }
    value
        .as_f64()
        .and_then(|secs| parse_step_timeout(secs).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::config(
                "driver",
                inst.name.clone(),
                format!(
                    "key `{STEP_TIMEOUT_KEY}`: `{value}` is not a positive number of seconds; write e.g. `{STEP_TIMEOUT_KEY}: 1800`"
                ),
            )
        })
}

/// A step time limit from a number of seconds: positive, finite, and at most a year (a
/// larger one is surely a mistake, and `Duration` could not hold every number).
///
/// # Errors
/// A message saying what a valid limit is.
pub fn parse_step_timeout(secs: f64) -> std::result::Result<Duration, String> {
    const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;
    if secs.is_finite() && secs > 0.0 && secs <= MAX_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "`{secs}` is not a step time limit: give a positive number of seconds, at most {MAX_SECS} (a year)"
        ))
    }
}

/// The steps an instance went through: the last one started, and the first that failed.
#[derive(Debug, Default, Clone, Copy)]
struct StepsSeen {
    last: Option<Action>,
    failed: Option<Action>,
}

/// What happened to one instance.
#[derive(Debug)]
#[non_exhaustive]
pub struct InstanceOutcome {
    /// The instance.
    pub instance: String,
    /// How it ended (as its [`Event::InstanceFinished`] said).
    pub outcome: Outcome,
    /// Its error, if it failed (or was cancelled).
    pub error: Option<Error>,
    /// Test cases its verifier reported.
    pub cases: Vec<CaseResult>,
    /// The action that failed, when one did.
    pub failed_action: Option<Action>,
}

impl InstanceOutcome {
    /// Whether it failed (cancellation is not a failure of its own).
    pub fn failed(&self) -> bool {
        self.outcome.is_failure()
    }
}

/// How an instance, step or hook that ended with `error` counts: a verifier that found
/// failures failed; a cancellation was cancelled (for the reason it carries); anything else
/// errored.
pub fn outcome_of(error: Option<&Error>) -> Outcome {
    match error {
        None => Outcome::Passed,
        Some(Error::VerifyFailed { .. }) => Outcome::Failed,
        Some(Error::Cancelled { reason, .. }) => Outcome::Cancelled { cause: *reason },
        Some(Error::Aborted { .. }) => Outcome::Cancelled {
            cause: CancelReason::Interrupted,
        },
        Some(_) => Outcome::Errored,
    }
}

/// test-kitchen's closing message when actions failed: `N actions failed.` and one
/// `>>>>>>     <message>` line per failure; `None` when none failed.
pub fn failure_summary(outcomes: &[InstanceOutcome]) -> Option<String> {
    let failed: Vec<&InstanceOutcome> = outcomes.iter().filter(|o| o.failed()).collect();
    if failed.is_empty() {
        return None;
    }
    let mut msg = format!("{} actions failed.", failed.len());
    for o in failed {
        // test-kitchen's line, then what actually went wrong (test-kitchen leaves that to
        // the log).
        if let Some(action) = o.failed_action {
            let what = action.as_str();
            let mut verb = what[..1].to_uppercase();
            verb.push_str(&what[1..]);
            msg.push_str(&format!(
                "\n>>>>>>     {verb} failed on instance <{name}>.  Please see .kitchen/logs/{name}.log for more details",
                name = o.instance
            ));
        }
        if let Some(e) = &o.error {
            msg.push_str(&format!("\n>>>>>>     {e}"));
        }
    }
    Some(msg)
}

/// Stops a [`Runner`] from starting further steps (an interrupt, or `--fail-fast` after a
/// failure). Steps already running finish, so nothing is left half-created, and
/// `test --destroy always` still destroys. The first reason given is kept.
///
/// [`Canceller::abort`] (the second interrupt) also stops the steps in progress: each
/// records its interruption in its state file and ends, its host commands killed.
#[derive(Debug, Clone)]
pub struct Canceller(Arc<CancelState>);

#[derive(Debug)]
struct CancelState {
    reason: AtomicU8,
    aborted: tokio::sync::watch::Sender<bool>,
}

impl Default for Canceller {
    fn default() -> Self {
        Self(Arc::new(CancelState {
            reason: AtomicU8::new(Self::NOT_CANCELLED),
            aborted: tokio::sync::watch::Sender::new(false),
        }))
    }
}

impl Canceller {
    const NOT_CANCELLED: u8 = 0;
    const INTERRUPTED: u8 = 1;
    const FAIL_FAST: u8 = 2;

    /// Asks the runner to start no further step, because of Ctrl-C.
    pub fn cancel(&self) {
        self.cancel_for(CancelReason::Interrupted);
    }

    /// Asks the runner to start no further step, for `reason`.
    pub fn cancel_for(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::FailFast => Self::FAIL_FAST,
            _ => Self::INTERRUPTED,
        };
        let _ = self.0.reason.compare_exchange(
            Self::NOT_CANCELLED,
            code,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Why the run was cancelled, if it was.
    pub fn reason(&self) -> Option<CancelReason> {
        match self.0.reason.load(Ordering::SeqCst) {
            Self::INTERRUPTED => Some(CancelReason::Interrupted),
            Self::FAIL_FAST => Some(CancelReason::FailFast),
            _ => None,
        }
    }

    /// Whether the run was cancelled (an interrupt or `--fail-fast`).
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Cancels (as an interrupt, unless already cancelled) and also stops the steps in
    /// progress.
    pub fn abort(&self) {
        self.cancel();
        self.0.aborted.send_replace(true);
    }

    /// Whether [`Canceller::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        *self.0.aborted.borrow()
    }

    /// Resolves once [`Canceller::abort`] is called.
    pub async fn aborted(&self) {
        let mut rx = self.0.aborted.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|aborted| *aborted).await;
    }
}

/// Runs commands on instances of one project.
#[derive(Debug, Clone)]
pub struct Runner {
    kitchen_root: PathBuf,
    test_base_path: PathBuf,
    bus: EventBus,
    host_env: Arc<Vec<(String, String)>>,
    cancel: Canceller,
    command_line: Arc<Vec<String>>,
    converge_cache: bool,
}

impl Runner {
    /// A runner for the project at `kitchen_root`, emitting what happens into `bus`.
    pub fn new(
        kitchen_root: impl Into<PathBuf>,
        test_base_path: impl Into<PathBuf>,
        bus: EventBus,
    ) -> Self {
        Self {
            kitchen_root: kitchen_root.into(),
            test_base_path: test_base_path.into(),
            bus,
            host_env: Arc::new(std::env::vars().collect()),
            cancel: Canceller::default(),
            command_line: Arc::default(),
            converge_cache: false,
        }
    }

    /// Turns the converge cache on for every instance (`--converge-cache`); without it, only
    /// instances whose driver block says `converge_cache: true` use it.
    #[must_use]
    pub fn with_converge_cache(mut self, on: bool) -> Self {
        self.converge_cache = on;
        self
    }

    /// Records the command line (program name first) in [`Event::RunStarted`].
    pub fn with_command_line(mut self, argv: Vec<String>) -> Self {
        self.command_line = Arc::new(argv);
        self
    }

    /// The bus this runner emits into.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// A handle that stops this runner from starting further steps.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// Sets a variable in the host environment plugins see (such as `TKENV_X`, which the
    /// shell provisioner exports into the instance as `X`), replacing an existing one.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let env = Arc::make_mut(&mut self.host_env);
        env.retain(|(k, _)| *k != key);
        env.push((key, value.into()));
        self
    }

    /// Runs `command` on every instance, `opts.concurrency` at a time, and returns each
    /// instance's outcome in the given order. Failures never stop other instances unless
    /// `fail_fast` is set, and then only between steps (never in the middle of a create).
    ///
    /// Emits [`Event::RunStarted`] first, then each instance's events; the caller, which
    /// decides the exit code, emits [`Event::RunFinished`].
    pub async fn run(
        &self,
        instances: &[InstanceConfig],
        command: &Command,
        opts: RunOptions,
    ) -> Vec<InstanceOutcome> {
        let started_at = events::now();
        self.bus.emit(Event::RunStarted(RunStarted {
            at: started_at,
            run_id: run_id(started_at),
            command: command.name().to_string(),
            command_line: self.command_line.as_ref().clone(),
            instances: instances.iter().map(InstanceId::from).collect(),
            concurrency: opts.concurrency.max(1),
            version: crate::VERSION.to_string(),
            hostname: events::hostname(),
        }));
        let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let cancel = self.cancel.clone();
        let mut tasks = Vec::new();
        for inst in instances {
            let inst = Arc::new(inst.clone());
            // Take the permit here, before spawning, so instances start in the order given
            // (with `-c 1`, spawned tasks would otherwise race for the permit and a later
            // instance could run, and fail fast, before the first one). The semaphore is
            // never closed, so acquire cannot fail.
            let permit = permits.clone().acquire_owned().await.ok();
            let cancel = cancel.clone();
            let command = command.clone();
            let this = self.clone();
            tasks.push((
                inst.name.clone(),
                tokio::spawn(async move {
                    let _permit = permit;
                    let mut cases = Vec::new();
                    let (result, failed_action) = this
                        .run_instance(inst.clone(), &command, &cancel, opts, &mut cases)
                        .await;
                    if outcome_of(result.as_ref().err()).is_failure() && opts.fail_fast {
                        cancel.cancel_for(CancelReason::FailFast);
                    }
                    (result, cases, failed_action)
                }),
            ));
        }
        let mut outcomes = Vec::new();
        for (name, task) in tasks {
            let (error, cases, failed_action) = match task.await {
                Ok((r, cases, failed_action)) => (r.err(), cases, failed_action),
                Err(join) => (
                    Some(Error::Runtime {
                        instance: name.clone(),
                        message: format!("the instance's task ended abnormally: {join}"),
                    }),
                    Vec::new(),
                    None,
                ),
            };
            outcomes.push(InstanceOutcome {
                instance: name,
                outcome: outcome_of(error.as_ref()),
                failed_action: error.as_ref().and(failed_action),
                error,
                cases,
            });
        }
        outcomes
    }

    /// Runs one instance between its [`Event::InstanceStarted`] and
    /// [`Event::InstanceFinished`].
    async fn run_instance(
        &self,
        inst: Arc<InstanceConfig>,
        command: &Command,
        cancel: &Canceller,
        opts: RunOptions,
        cases: &mut Vec<CaseResult>,
    ) -> (Result<()>, Option<Action>) {
        let output = self.bus.instance(InstanceId::from(inst.as_ref()));
        let started = Instant::now();
        self.bus.emit(Event::InstanceStarted(InstanceStarted {
            at: events::now(),
            instance: output.id().clone(),
        }));
        let mut seen = StepsSeen::default();
        let result = self
            .run_instance_inner(
                inst.clone(),
                command,
                cancel,
                opts,
                cases,
                &output,
                &mut seen,
            )
            .await;
        self.bus.emit(Event::InstanceFinished(InstanceFinished {
            at: events::now(),
            instance: output.id().clone(),
            outcome: outcome_of(result.as_ref().err()),
            last_action: seen.last,
            duration: started.elapsed(),
            reason: result
                .as_ref()
                .err()
                .map(|e| Reason::from_text(&e.to_string()).with_output_tail(output.take_tail())),
        }));
        (result, seen.failed)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_instance_inner(
        &self,
        inst: Arc<InstanceConfig>,
        command: &Command,
        cancel: &Canceller,
        opts: RunOptions,
        cases: &mut Vec<CaseResult>,
        output: &InstanceOutput,
        seen: &mut StepsSeen,
    ) -> Result<()> {
        let checked =
            super::preflight::check(&inst, command, &self.kitchen_root, &self.test_base_path)?;
        for key in &checked.unused_keys {
            output.warn(&key.to_string());
        }
        let driver = checked.driver;
        let step_timeout = match opts.step_timeout {
            Some(limit) => Some(limit),
            None => step_timeout_of(&inst)?,
        };
        let state_file = StateFile::new(&self.kitchen_root, &inst.name);
        // Before anything of this instance is written: its secrets are redacted everywhere.
        crate::events::redact::register_instance(&inst, &self.host_env);
        let ctx = InstanceContext::new(
            inst.clone(),
            &self.kitchen_root,
            &self.test_base_path,
            output.clone(),
        )
        .with_host_env(self.host_env.clone())
        .with_state_file(state_file.clone());
        if let Command::Exec(cmd) = command {
            // exec only reads the state, so it runs even while another process holds the
            // instance's lock (a converge): it says so, and its output then goes to
            // kitchen.log, not to the instance's log that the other process writes.
            let lock = match state_file.lock() {
                Ok(lock) => Some(lock),
                Err(Error::Locked { .. }) => {
                    output.info(&format!(
                        "{} is locked by another kitchen-driver process; exec runs beside it without the lock (its output goes to .kitchen/logs/kitchen.log only)",
                        inst.name
                    ));
                    None
                }
                Err(e) => return Err(e),
            };
            let state = state_file.load()?;
            if state.last_action().is_none() {
                if let Some(lock) = lock
                    && !state_file.path().exists()
                {
                    lock.remove();
                }
                return Err(Error::NotCreated {
                    instance: inst.name.clone(),
                });
            }
            let conn = driver.connection(&ctx, &state).await?;
            conn.execute(cmd, "exec command", output).await?;
            drop(lock);
            return Ok(());
        }
        let lock = state_file.lock()?;
        let hooks = Hooks::from_config(&inst, &self.kitchen_root)?;
        let mut run = InstanceRun {
            runner: self,
            inst: inst.clone(),
            ctx,
            driver,
            hooks,
            state: state_file.load()?,
            state_file: state_file.clone(),
            cancel: cancel.clone(),
            step_timeout,
            cases,
            seen,
            publish_key: None,
        };
        let result = match command {
            Command::Action(target) => run.transition_to(*target).await,
            Command::Test(mode) => {
                let mut result = run.transition_to(Action::Destroy).await;
                if result.is_ok() {
                    result = run.transition_to(Action::Verify).await;
                }
                let destroy = match mode {
                    DestroyMode::Passing => result.is_ok(),
                    DestroyMode::Always => true,
                    DestroyMode::Never => false,
                };
                if destroy && !cancel.is_aborted() {
                    // With --destroy always this runs even after a failure or cancellation,
                    // so nothing is left behind.
                    let d = run.run_step(Action::Destroy).await;
                    if result.is_ok() {
                        result = d;
                    }
                }
                result
            }
            Command::Exec(_) => Ok(()),
            Command::Reset => run.reset().await,
        };
        if !state_file.path().exists() {
            // Destroyed: leave nothing of the instance behind in .kitchen.
            lock.remove();
        }
        result
    }
}

struct InstanceRun<'a> {
    runner: &'a Runner,
    inst: Arc<InstanceConfig>,
    ctx: InstanceContext,
    driver: Box<dyn Driver>,
    hooks: Hooks,
    state: State,
    state_file: StateFile,
    cancel: Canceller,
    /// Each step's time limit, if any.
    step_timeout: Option<Duration>,
    cases: &'a mut Vec<CaseResult>,
    /// The last step attempted (for [`Event::InstanceFinished`]).
    seen: &'a mut StepsSeen,
    /// The converge cache key to publish under once the converge step succeeds.
    publish_key: Option<String>,
}

impl InstanceRun<'_> {
    async fn transition_to(&mut self, target: Action) -> Result<()> {
        for step in steps(self.state.last_action(), target) {
            if let Some(reason) = self.cancel.reason() {
                return Err(Error::Cancelled {
                    instance: self.inst.name.clone(),
                    action: step.to_string(),
                    reason,
                });
            }
            self.run_step(step).await?;
        }
        Ok(())
    }

    /// `reset`: the driver returns the created instance to its pristine state, and the last
    /// action goes back to `create`.
    async fn reset(&mut self) -> Result<()> {
        if self.state.last_action().is_none() {
            return Err(Error::NotCreated {
                instance: self.inst.name.clone(),
            });
        }
        self.seen.last = Some(Action::Create);
        // Bounded as every step is (`--step-timeout`, the driver's `step_timeout`, a second
        // interrupt): a reset waits for a boot, which can hang.
        let result = bounded(
            &self.inst.name,
            "reset",
            self.step_timeout,
            &self.cancel,
            self.driver.reset(&self.ctx, &mut self.state),
        )
        .await;
        match &result {
            Ok(()) => {
                self.state.set(keys::LAST_ACTION, Action::Create.as_str());
                self.state.set(keys::LAST_ERROR, serde_json::Value::Null);
                self.state.remove(keys::LAST_ERROR_MESSAGE);
            }
            Err(e) => {
                self.seen.failed.get_or_insert(Action::Create);
                self.state.set(keys::LAST_ERROR, e.kind_name());
                self.state.set(keys::LAST_ERROR_MESSAGE, e.to_string());
            }
        }
        let saved = self.state_file.save(&self.state);
        result.and(saved)
    }

    async fn run_step(&mut self, action: Action) -> Result<()> {
        let out = self.ctx.output.clone();
        let started = Instant::now();
        self.seen.last = Some(action);
        out.take_tail();
        out.bus().emit(Event::StepStarted(StepStarted {
            at: events::now(),
            instance: out.id().clone(),
            action,
        }));
        self.state.record_attempt(action);
        if action != Action::Destroy || self.state_file.path().exists() {
            self.state_file.save(&self.state)?;
        }
        let limit = self.step_timeout;
        let cancel = self.cancel.clone();
        let instance = self.inst.name.clone();
        let mut result = bounded(
            &instance,
            action.as_str(),
            limit,
            &cancel,
            self.pre_body_post(action),
        )
        .await;
        if !cancel.is_aborted() {
            // The finally hooks get a limit of their own: they clean up after a step that
            // may just have used all of its time.
            let finally = bounded(
                &instance,
                action.as_str(),
                limit,
                &cancel,
                self.run_hooks(action, Phase::Finally),
            )
            .await;
            if result.is_ok() {
                result = finally;
            }
        }
        if let Some(key) = self.publish_key.take()
            && result.is_ok()
        {
            let interrupted = self.cancel.is_cancelled();
            converge_cache::after_converge(
                self.driver.as_ref(),
                &self.ctx,
                &self.state,
                &key,
                interrupted,
            )
            .await;
        }
        let saved = match &result {
            Ok(()) => {
                if action == Action::Destroy {
                    self.state_file.delete().map(|()| self.state = State::new())
                } else {
                    self.state.set(keys::LAST_ACTION, action.as_str());
                    self.state.set(keys::LAST_ERROR, serde_json::Value::Null);
                    self.state.remove(keys::LAST_ERROR_MESSAGE);
                    self.state_file.save(&self.state)
                }
            }
            Err(e) => {
                self.seen.failed.get_or_insert(action);
                self.state.set(keys::LAST_ERROR, e.kind_name());
                self.state.set(
                    keys::LAST_ERROR_MESSAGE,
                    crate::events::redact::redact(&e.to_string()).into_owned(),
                );
                self.state_file.save(&self.state)
            }
        };
        let result = result.and(saved);
        let tail = out.take_tail();
        out.bus().emit(Event::StepFinished(StepFinished {
            at: events::now(),
            instance: out.id().clone(),
            action,
            duration: started.elapsed(),
            outcome: outcome_of(result.as_ref().err()),
            reason: result
                .as_ref()
                .err()
                .map(|e| Reason::from_text(&e.to_string()).with_output_tail(tail)),
        }));
        result
    }

    /// The pre hooks, the step itself and the post hooks.
    async fn pre_body_post(&mut self, action: Action) -> Result<()> {
        self.run_hooks(action, Phase::Pre).await?;
        // Converge and verify are what use the instance: sample it while they run.
        let sampler = match action {
            Action::Converge | Action::Verify => self
                .connection()
                .await
                .ok()
                .map(|conn| Sampler::start(conn, self.ctx.output.clone(), action)),
            _ => None,
        };
        let body = self.body(action).await;
        if let Some(sampler) = sampler {
            sampler.finish().await;
        }
        body?;
        self.run_hooks(action, Phase::Post).await
    }

    async fn connection(&self) -> Result<Arc<dyn Connection>> {
        self.driver.connection(&self.ctx, &self.state).await
    }

    async fn body(&mut self, action: Action) -> Result<()> {
        match action {
            Action::Create => {
                let cache = converge_cache::enabled(&self.inst, self.runner.converge_cache);
                converge_cache::before_create(
                    self.driver.as_ref(),
                    &self.ctx,
                    &mut self.state,
                    cache,
                )
                .await?;
                self.driver.create(&self.ctx, &mut self.state).await
            }
            Action::Destroy => self.driver.destroy(&self.ctx, &mut self.state).await,
            Action::Setup => Ok(()),
            Action::Converge => {
                let cache = converge_cache::enabled(&self.inst, self.runner.converge_cache);
                let plan = converge_cache::before_converge(
                    self.driver.as_ref(),
                    &self.ctx,
                    &mut self.state,
                    cache,
                )
                .await?;
                let ConvergePlan::Converge(key) = plan else {
                    return Ok(());
                };
                self.publish_key = key;
                let prov = provisioner::for_instance(&self.inst)?;
                let conn = self.connection().await?;
                prov.converge(&self.ctx.plugin(&self.state, conn)).await
            }
            Action::Verify => {
                let ver = verifier::for_instance(&self.inst)?;
                let conn = self.connection().await?;
                let report = ver.verify(&self.ctx.plugin(&self.state, conn)).await?;
                for case in &report.cases {
                    self.ctx
                        .output
                        .bus()
                        .emit(Event::TestCase(test_case_event(self.ctx.output.id(), case)));
                }
                self.cases.extend(report.cases);
                match report.failure {
                    None => Ok(()),
                    Some(message) => Err(Error::VerifyFailed {
                        instance: self.inst.name.clone(),
                        message,
                    }),
                }
            }
        }
    }

    async fn run_hooks(&self, action: Action, phase: Phase) -> Result<()> {
        let hooks = self.hooks.for_phase(action, phase, &self.inst.platform);
        for hook in hooks {
            self.run_hook(action, phase, &hook.command).await?;
        }
        Ok(())
    }

    /// Runs one hook between its [`Event::HookStarted`] and [`Event::HookFinished`].
    async fn run_hook(&self, action: Action, phase: Phase, command: &HookCommand) -> Result<()> {
        let out = &self.ctx.output;
        let (shown, local) = match command {
            HookCommand::Local { command, user, .. } => (local_hook_command(command, user), true),
            HookCommand::Remote { command, .. } => (command.clone(), false),
        };
        let phase = match phase {
            Phase::Pre => HookPhase::Pre,
            Phase::Post => HookPhase::Post,
            Phase::Finally => HookPhase::Finally,
        };
        if let HookCommand::Remote {
            command,
            skippable: true,
        } = command
            && self.state.get_str(keys::LAST_ACTION).is_none()
            && !(action == Action::Create && phase != HookPhase::Pre)
        {
            out.info(&format!(
                "Skipping {phase} {action} hook (instance not created): {command}"
            ));
            return Ok(());
        }
        out.bus().emit(Event::HookStarted(HookStarted {
            at: events::now(),
            instance: out.id().clone(),
            action,
            phase,
            command: shown.clone(),
            local,
        }));
        let started = Instant::now();
        let result = self.hook_body(action, phase, command, &shown).await;
        out.bus().emit(Event::HookFinished(HookFinished {
            at: events::now(),
            instance: out.id().clone(),
            action,
            phase,
            command: shown,
            duration: started.elapsed(),
            outcome: outcome_of(result.as_ref().err()),
            reason: result
                .as_ref()
                .err()
                .map(|e| Reason::from_text(&e.to_string())),
        }));
        result
    }

    async fn hook_body(
        &self,
        action: Action,
        phase: HookPhase,
        hook: &HookCommand,
        shown: &str,
    ) -> Result<()> {
        let what = format!("{phase} {action} hook");
        match hook {
            HookCommand::Local {
                cwd, environment, ..
            } => {
                let cwd: &Path = cwd.as_deref().unwrap_or(&self.runner.kitchen_root);
                let mut env = vec![
                    ("KITCHEN_INSTANCE_NAME".to_string(), self.inst.name.clone()),
                    ("KITCHEN_SUITE_NAME".to_string(), self.inst.suite.clone()),
                    (
                        "KITCHEN_PLATFORM_NAME".to_string(),
                        self.inst.platform.clone(),
                    ),
                    (
                        "KITCHEN_INSTANCE_HOSTNAME".to_string(),
                        self.state.get_str(keys::HOSTNAME).unwrap_or("").to_string(),
                    ),
                ];
                env.extend(environment.iter().cloned());
                let code = HostCommand::shell(shown, cwd)
                    .envs(self.ctx.host_env.iter().cloned())
                    .envs(env)
                    .run(&self.ctx.output)
                    .await
                    .map_err(|e| Error::io("running hook command in", cwd, e))?;
                if code != 0 {
                    return Err(Error::CommandFailed {
                        instance: self.inst.name.clone(),
                        what,
                        command: shown.to_string(),
                        exit_code: code,
                    });
                }
            }
            HookCommand::Remote { command, skippable } => {
                if self.state.get_str(keys::LAST_ACTION).is_none()
                    && !(action == Action::Create && phase != HookPhase::Pre)
                {
                    return Err(Error::NotCreated {
                        instance: self.inst.name.clone(),
                    });
                }
                let result = match self.connection().await {
                    Ok(conn) => conn
                        .exec(&ExecRequest::shell(command.clone()), &self.ctx.output)
                        .await
                        .and_then(|o| {
                            if o.success() {
                                Ok(())
                            } else {
                                Err(Error::CommandFailed {
                                    instance: self.inst.name.clone(),
                                    what: what.clone(),
                                    command: command.clone(),
                                    exit_code: o.exit_code,
                                })
                            }
                        }),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => {}
                    Err(e) if *skippable => {
                        self.ctx
                            .output
                            .warn(&format!("Skippable {what} failed: {e}"));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// A local hook's command line as it runs (through `sudo` when it names a `user`).
fn local_hook_command(command: &str, user: &Option<String>) -> String {
    match user {
        Some(u) => format!(
            "sudo -E -u {} sh -c {}",
            transport::shell_quote(u),
            transport::shell_quote(command)
        ),
        None => command.to_string(),
    }
}

/// The event of one verifier case.
fn test_case_event(instance: &InstanceId, case: &CaseResult) -> TestCaseFinished {
    TestCaseFinished {
        at: events::now(),
        instance: instance.clone(),
        name: case.name.clone(),
        file: case.group.clone(),
        line: case.line,
        outcome: case.outcome,
        message: case.message.clone(),
        output: case.output.clone(),
        duration: case.duration,
    }
}

/// Runs `work` (part of `step`, an action or `reset`, on `instance`) until it ends, `limit`
/// passes (a [`Error::StepTimedOut`]) or the run is aborted (a [`Error::Aborted`]). Either
/// way `work` is dropped, which kills its host commands' process groups and its commands in
/// the instance.
async fn bounded(
    instance: &str,
    step: &str,
    limit: Option<Duration>,
    cancel: &Canceller,
    work: impl Future<Output = Result<()>>,
) -> Result<()> {
    let limited = async {
        match limit {
            Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                Err(Error::StepTimedOut {
                    instance: instance.to_string(),
                    action: step.to_string(),
                    limit,
                })
            }),
            None => work.await,
        }
    };
    let aborted = || Error::Aborted {
        instance: instance.to_string(),
        action: step.to_string(),
    };
    tokio::select! {
        // The abort wins when both are ready, and a step that failed because the abort killed
        // its command is an aborted step too.
        biased;
        () = cancel.aborted() => Err(aborted()),
        result = limited => match result {
            Err(_) if cancel.is_aborted() => Err(aborted()),
            result => result,
        },
    }
}

/// A run id: the start time and the process id (unique on one host, sortable).
fn run_id(at: events::Timestamp) -> String {
    format!("{}-{}", at.format("%Y%m%dT%H%M%S%.3fZ"), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step whose command fails because the abort killed it ends as aborted, whichever of
    /// the two the runtime sees first (the second interrupt's race).
    #[tokio::test]
    async fn a_step_failing_from_the_abort_is_an_aborted_step() {
        for _ in 0..50 {
            let cancel = Canceller::default();
            let killed_by_the_abort = {
                let cancel = cancel.clone();
                async move {
                    cancel.aborted().await;
                    Err(Error::Runtime {
                        instance: "i".into(),
                        message: "hook exited with code -1".into(),
                    })
                }
            };
            cancel.abort();
            let result = bounded("i", "converge", None, &cancel, killed_by_the_abort).await;
            assert!(matches!(result, Err(Error::Aborted { .. })), "{result:?}");
        }
        // A step that ends by itself keeps its own result.
        let cancel = Canceller::default();
        let result = bounded("i", "converge", None, &cancel, async { Ok(()) }).await;
        assert!(result.is_ok(), "{result:?}");
    }
}
