//! The ECS backend: task definitions registered (an identical active revision is reused),
//! one RunTask per instance, DescribeTasks for every running task in one call per 100 per
//! polling round, each task's awslogs stream tailed with GetLogEvents, and StopTask for every
//! task this run started on Ctrl-C, SIGTERM or `--timeout`.
//!
//! - **Registration.** Each rendered definition carries a `kitchen:definition` tag, a hash of
//!   its JSON. DescribeTaskDefinition on the family (its latest ACTIVE revision, with tags)
//!   tells whether the hash is already registered: an unchanged rerun registers nothing.
//! - **RunTask.** Paced at [`RUN_TASK_PER_SECOND`] (under ECS's documented 20 per second),
//!   `count` 1, `startedBy` the run ID, tags naming project, instance and run, and a
//!   `clientToken` per instance and attempt, so the SDK's own retries (throttling included)
//!   can never start a task twice. `failures[]` with `RESOURCE:*` or `AGENT` are retried with
//!   backoff up to [`PLACEMENT_ATTEMPTS`] attempts; an answer with neither a task nor a
//!   failure (moto drops tasks that do not fit) counts as a placement failure.
//! - **Waiting.** No ceiling but `--timeout`. DescribeTasks is sent without the SDK's retries
//!   (a failed call is repeated by the next round), so a round makes one call per 100 tasks,
//!   never more. The polling interval starts at
//!   [`POLL_MIN`] and grows to [`POLL_MAX`] while nothing changes. A task that goes from
//!   PENDING to STOPPED without RUNNING is simply STOPPED. A task DescribeTasks reports
//!   `MISSING` three rounds in a row is an infrastructure error.
//! - **Logs.** The stream `<prefix>/<container>/<task id>` is read from the head with forward
//!   tokens, retried while it does not exist yet, and drained once more after the task stops,
//!   until the token repeats.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ecs::error::DisplayErrorContext;
use aws_sdk_ecs::operation::run_task::builders::RunTaskFluentBuilder;
use aws_sdk_ecs::types as ecs_types;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use crate::classify::{
    ContainerView, FailureView, RunFailure, TaskView, Verdict, classify_run_failure,
    classify_stopped,
};
use crate::error::{Error, Result};
use crate::report::{InstanceResult, Sink, Status};
use crate::run::{Prepared, RunOptions, StopCause, follow_line, result_of};
use crate::settings::{EcsSettings, LaunchType};
use crate::taskdef::{CONTAINER_NAME, TaskDefinition, family_prefix, tag_keys};
use crate::transcript::Transcript;

/// RunTask calls per second, under ECS's documented 20.
pub const RUN_TASK_PER_SECOND: u32 = 15;
/// GetLogEvents calls per second for all tasks together, under CloudWatch Logs' 25.
pub const LOG_READS_PER_SECOND: u32 = 20;
/// How many times a placement failure (`RESOURCE:*`, `AGENT`) is tried.
pub const PLACEMENT_ATTEMPTS: u32 = 6;
/// The first polling interval.
pub const POLL_MIN: Duration = Duration::from_secs(1);
/// The longest polling interval.
pub const POLL_MAX: Duration = Duration::from_secs(15);
/// The tag holding the hash of a rendered task definition.
pub const DEFINITION_TAG: &str = "kitchen:definition";
/// DescribeTasks' limit of tasks per call.
const DESCRIBE_BATCH: usize = 100;

/// The SDK clients for one Region.
#[derive(Debug, Clone)]
pub struct Clients {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Clients {
    /// Clients from the standard chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...),
    /// with `region` when set, and the SDK's standard retries (throttling included) raised to
    /// 8 attempts.
    pub async fn from_env(region: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(8));
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        let conf = loader.load().await;
        Self {
            ecs: aws_sdk_ecs::Client::new(&conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(&conf),
        }
    }
}

fn aws_err<E: std::error::Error>(operation: &'static str, e: E) -> Error {
    Error::Aws {
        operation,
        message: DisplayErrorContext(e).to_string(),
    }
}

/// The hash that identifies a rendered definition (its JSON without tags).
pub fn definition_hash(td: &TaskDefinition) -> String {
    let mut untagged = td.clone();
    untagged.tags.clear();
    let digest = Sha256::digest(untagged.json().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn sdk_tags(tags: &[(String, String)]) -> Vec<ecs_types::Tag> {
    tags.iter()
        .map(|(k, v)| ecs_types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn build<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Aws {
        operation: "RegisterTaskDefinition",
        message: format!("building the request: {e}"),
    })
}

/// The RegisterTaskDefinition request for `td`.
///
/// # Errors
/// [`Error::Aws`] if a required field is missing (it cannot be for a rendered definition).
pub fn register_request(
    client: &aws_sdk_ecs::Client,
    td: &TaskDefinition,
) -> Result<
    aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
> {
    let mut req = client
        .register_task_definition()
        .family(&td.family)
        .network_mode(ecs_types::NetworkMode::from(td.network_mode.as_str()))
        .cpu(&td.cpu)
        .memory(&td.memory)
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_task_role_arn(td.task_role_arn.clone());
    for c in &td.requires_compatibilities {
        req = req.requires_compatibilities(ecs_types::Compatibility::from(c.as_str()));
    }
    for c in &td.container_definitions {
        let mut b = ecs_types::ContainerDefinition::builder()
            .name(&c.name)
            .image(&c.image)
            .essential(c.essential)
            .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()))
            .set_command((!c.command.is_empty()).then(|| c.command.clone()))
            .set_working_directory(c.working_directory.clone())
            .set_cpu(c.cpu)
            .set_memory(c.memory);
        for kv in &c.environment {
            b = b.environment(
                ecs_types::KeyValuePair::builder()
                    .name(&kv.name)
                    .value(&kv.value)
                    .build(),
            );
        }
        for d in &c.depends_on {
            b = b.depends_on(build(
                ecs_types::ContainerDependency::builder()
                    .container_name(&d.container_name)
                    .condition(ecs_types::ContainerCondition::from(d.condition.as_str()))
                    .build(),
            )?);
        }
        if let Some(l) = &c.log_configuration {
            b = b.log_configuration(build(
                ecs_types::LogConfiguration::builder()
                    .log_driver(ecs_types::LogDriver::from(l.log_driver.as_str()))
                    .set_options(Some(l.options.clone().into_iter().collect()))
                    .build(),
            )?);
        }
        req = req.container_definitions(b.build());
    }
    let mut tags: Vec<(String, String)> = td
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    tags.push((DEFINITION_TAG.into(), definition_hash(td)));
    Ok(req.set_tags(Some(sdk_tags(&tags))))
}

/// Registers `td` unless its latest ACTIVE revision carries the same definition hash;
/// returns the revision's ARN and whether it was registered now.
///
/// # Errors
/// [`Error::Aws`] when DescribeTaskDefinition fails other than for a family that does not
/// exist yet, or when RegisterTaskDefinition fails.
pub async fn ensure_registered(
    client: &aws_sdk_ecs::Client,
    td: &TaskDefinition,
) -> Result<(String, bool)> {
    let hash = definition_hash(td);
    let described = client
        .describe_task_definition()
        .task_definition(&td.family)
        .include(ecs_types::TaskDefinitionField::Tags)
        .send()
        .await;
    if let Ok(out) = &described {
        let same = out
            .tags()
            .iter()
            .any(|t| t.key() == Some(DEFINITION_TAG) && t.value() == Some(hash.as_str()));
        let active = out
            .task_definition()
            .is_some_and(|d| d.status() == Some(&ecs_types::TaskDefinitionStatus::Active));
        if same
            && active
            && let Some(arn) = out.task_definition().and_then(|d| d.task_definition_arn())
        {
            return Ok((arn.to_owned(), false));
        }
    }
    // A family that does not exist yet is a ClientException: register.
    let out = register_request(client, td)?
        .send()
        .await
        .map_err(|e| aws_err("RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .ok_or_else(|| Error::Aws {
            operation: "RegisterTaskDefinition",
            message: "the answer has no task definition ARN".into(),
        })?;
    Ok((arn.to_owned(), true))
}

/// The clientToken of an instance's attempt: at most 64 characters, the same for the SDK's
/// retries of one attempt, different for the next attempt.
pub fn client_token(run_id: &str, instance: &str, attempt: u32) -> String {
    let digest = Sha256::digest(instance.as_bytes());
    let h: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{run_id}-{h}-{attempt}")
}

/// Fills a RunTask request for one instance's attempt (pure: the request-level tests of the
/// FARGATE shape use it, since moto cannot run awsvpc tasks).
pub fn run_task_request(
    req: RunTaskFluentBuilder,
    p: &Prepared,
    task_definition_arn: &str,
    kitchen_root: &Path,
    run_id: &str,
    attempt: u32,
) -> RunTaskFluentBuilder {
    let s = &p.settings;
    let mut tags: Vec<(String, String)> = vec![
        (
            tag_keys::PROJECT.into(),
            kitchen_root.to_string_lossy().chars().take(256).collect(),
        ),
        (tag_keys::INSTANCE.into(), p.instance.clone()),
        (tag_keys::RUN.into(), run_id.into()),
    ];
    tags.extend(s.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut req = req
        .cluster(&s.cluster)
        .task_definition(task_definition_arn)
        .count(1)
        .started_by(run_id)
        .client_token(client_token(run_id, &p.instance, attempt))
        .set_tags(Some(sdk_tags(&tags)));
    if s.capacity_provider_strategy.is_empty() {
        req = req.launch_type(ecs_types::LaunchType::from(s.launch_type.as_str()));
    } else {
        for c in &s.capacity_provider_strategy {
            if let Ok(item) = ecs_types::CapacityProviderStrategyItem::builder()
                .capacity_provider(&c.capacity_provider)
                .set_weight(c.weight)
                .set_base(c.base)
                .build()
            {
                req = req.capacity_provider_strategy(item);
            }
        }
    }
    if p.task_definition.network_mode == "awsvpc"
        && let Ok(vpc) = ecs_types::AwsVpcConfiguration::builder()
            .set_subnets(Some(s.subnets.clone()))
            .set_security_groups((!s.security_groups.is_empty()).then(|| s.security_groups.clone()))
            .assign_public_ip(if s.assign_public_ip {
                ecs_types::AssignPublicIp::Enabled
            } else {
                ecs_types::AssignPublicIp::Disabled
            })
            .build()
    {
        req = req.network_configuration(
            ecs_types::NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        );
    }
    if s.launch_type == LaunchType::Fargate && s.capacity_provider_strategy.is_empty() {
        req = req.set_platform_version(s.platform_version.clone());
    }
    req
}

/// A task as the classification sees it.
pub fn task_view(t: &ecs_types::Task) -> TaskView {
    TaskView {
        task_arn: t.task_arn().unwrap_or_default().to_owned(),
        last_status: t.last_status().unwrap_or_default().to_owned(),
        stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
        stopped_reason: t.stopped_reason().map(str::to_owned),
        containers: t
            .containers()
            .iter()
            .map(|c| ContainerView {
                name: c.name().unwrap_or_default().to_owned(),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_owned),
                last_status: c.last_status().map(str::to_owned),
            })
            .collect(),
    }
}

fn failure_view(f: &ecs_types::Failure) -> FailureView {
    FailureView {
        arn: f.arn().map(str::to_owned),
        reason: f.reason().map(str::to_owned),
        detail: f.detail().map(str::to_owned),
    }
}

/// Spaces calls at a fixed rate, shared by every caller.
#[derive(Debug)]
struct Pacer {
    next: Mutex<Instant>,
    every: Duration,
}

impl Pacer {
    fn per_second(n: u32) -> Self {
        Self {
            next: Mutex::new(Instant::now()),
            every: Duration::from_secs(1) / n.max(1),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.every;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

enum Msg {
    Launched {
        idx: usize,
        arn: String,
        permit: OwnedSemaphorePermit,
    },
    NotLaunched {
        idx: usize,
        result: InstanceResult,
    },
    Line {
        idx: usize,
        line: String,
    },
    LogsDone {
        idx: usize,
    },
}

struct Slot {
    arn: String,
    started: Instant,
    stop: Option<StopCause>,
    stop_sent: bool,
    misses: u32,
    last_status: String,
    stopped_view: Option<TaskView>,
    logs_done: bool,
    task_stopped: Arc<AtomicBool>,
    _permit: OwnedSemaphorePermit,
}

/// Runs every prepared instance as an ECS task and waits for all of them.
///
/// # Errors
/// [`Error::Aws`] when registration fails (before any task starts); [`Error::Usage`] when a
/// bundle image was not published ([`crate::image::publish_all`]); a failure of one task is
/// its [`InstanceResult`].
pub async fn run(
    kitchen_root: &Path,
    prepared: &[Prepared],
    opts: &RunOptions,
    sink: &Sink,
) -> Result<Vec<InstanceResult>> {
    let mut clients_by_region: HashMap<Option<String>, Clients> = HashMap::new();
    for p in prepared {
        if p.bundle_image.is_some()
            && p.task_definition
                .container_definitions
                .iter()
                .any(|c| c.image.ends_with(crate::image::UNPUBLISHED))
        {
            return Err(Error::Usage(format!(
                "instance {}: its bundle image is not published: call image::publish_all first",
                p.instance
            )));
        }
        if !clients_by_region.contains_key(&p.settings.region) {
            let c = Clients::from_env(p.settings.region.as_deref()).await;
            clients_by_region.insert(p.settings.region.clone(), c);
        }
        if p.settings.launch_type == LaunchType::Fargate
            && p.settings.capacity_provider_strategy.is_empty()
            && p.settings.subnets.is_empty()
        {
            return Err(Error::settings(
                &p.instance,
                "FARGATE tasks need `subnets` (awsvpc networking): set `ecs: {subnets: [...]}`, or `launch_type: EC2`",
            ));
        }
    }
    let clients: Vec<Clients> = prepared
        .iter()
        .map(|p| clients_by_region[&p.settings.region].clone())
        .collect();

    // Register (or reuse) every definition before the first task starts.
    let registered: Vec<Result<(String, bool)>> =
        futures::stream::iter(prepared.iter().zip(&clients))
            .map(|(p, c)| async move { ensure_registered(&c.ecs, &p.task_definition).await })
            .buffered(8)
            .collect()
            .await;
    let mut arns = Vec::new();
    for (p, r) in prepared.iter().zip(registered) {
        let (arn, new) = r?;
        tracing::info!(instance = %p.instance, %arn, registered = new, "task definition");
        sink.info(
            &p.instance,
            kitchen_driver::events::Level::Info,
            &format!(
                "task definition {arn} ({})",
                if new {
                    "registered"
                } else {
                    "unchanged, reused"
                }
            ),
        );
        arns.push(arn);
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let pacer = Arc::new(Pacer::per_second(RUN_TASK_PER_SECOND));
    let log_pacer = Arc::new(Pacer::per_second(LOG_READS_PER_SECOND));
    for (idx, p) in prepared.iter().enumerate() {
        let (tx, permits, pacer, opts, p, arn, client) = (
            tx.clone(),
            permits.clone(),
            pacer.clone(),
            opts.clone(),
            p.clone(),
            arns[idx].clone(),
            clients[idx].ecs.clone(),
        );
        let root = kitchen_root.to_path_buf();
        let sink = sink.clone();
        tokio::spawn(async move {
            let msg = launch(
                idx, &client, &root, &p, &arn, &opts, &pacer, &permits, &sink,
            )
            .await;
            let _ = tx.send(msg);
        });
    }

    let mut slots: BTreeMap<usize, Slot> = BTreeMap::new();
    let mut transcripts: Vec<Transcript> = prepared.iter().map(Prepared::transcript).collect();
    let mut results: Vec<Option<InstanceResult>> = vec![None; prepared.len()];
    let mut interval = POLL_MIN;
    let mut next_poll = Instant::now() + interval;
    let mut interrupted = false;
    while results.iter().any(Option::is_none) {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Launched { idx, arn, permit }) => {
                    let p = &prepared[idx];
                    sink.task_started(&p.instance, &arn);
                    let task_stopped = Arc::new(AtomicBool::new(false));
                    spawn_tail(idx, clients[idx].logs.clone(), &p.settings, &arn, task_stopped.clone(), log_pacer.clone(), tx.clone());
                    let mut slot = Slot {
                        arn, started: Instant::now(), stop: None, stop_sent: false, misses: 0, last_status: String::new(),
                        stopped_view: None, logs_done: false, task_stopped, _permit: permit,
                    };
                    if interrupted {
                        slot.stop = Some(StopCause::Interrupted);
                    }
                    slots.insert(idx, slot);
                    interval = POLL_MIN;
                    next_poll = next_poll.min(Instant::now() + interval);
                }
                Some(Msg::NotLaunched { idx, result }) => {
                    sink.instance_finished(&result);
                    results[idx] = Some(result);
                }
                Some(Msg::Line { idx, line }) => {
                    follow_line(sink, &prepared[idx].instance, &mut transcripts[idx], &line);
                }
                Some(Msg::LogsDone { idx }) => {
                    if let Some(s) = slots.get_mut(&idx) {
                        s.logs_done = true;
                    }
                }
                None => break,
            },
            _ = opts.interrupt.cancelled(), if !interrupted => {
                interrupted = true;
                for s in slots.values_mut() {
                    if s.stopped_view.is_none() {
                        s.stop = Some(StopCause::Interrupted);
                    }
                }
                next_poll = Instant::now();
            }
            _ = tokio::time::sleep_until(next_poll) => {
                // Timeouts, then StopTask for every task that must stop.
                if let Some(t) = opts.timeout {
                    for s in slots.values_mut() {
                        if s.stop.is_none() && s.stopped_view.is_none() && s.started.elapsed() >= t {
                            s.stop = Some(StopCause::TimedOut(t));
                        }
                    }
                }
                for (idx, s) in slots.iter_mut() {
                    if let (Some(cause), false, None) = (&s.stop, s.stop_sent, &s.stopped_view) {
                        s.stop_sent = true;
                        let p = &prepared[*idx];
                        sink.warning(Some(&p.instance), &format!("stopping task {}: {}", s.arn, cause.reason()));
                        if let Err(e) = clients[*idx].ecs.stop_task().cluster(&p.settings.cluster).task(&s.arn).reason(cause.reason()).send().await {
                            sink.warning(Some(&p.instance), &format!("StopTask {} failed: {}", s.arn, DisplayErrorContext(e)));
                            s.stop_sent = false;
                        }
                    }
                }
                let changed = poll_round(prepared, &clients, &mut slots, sink).await;
                // Finish every task that stopped and whose logs are drained.
                let done: Vec<usize> = slots.iter().filter(|(_, s)| s.stopped_view.is_some() && s.logs_done).map(|(i, _)| *i).collect();
                for idx in done {
                    let Some(s) = slots.remove(&idx) else { continue };
                    let result = finish(&prepared[idx], s, std::mem::take(&mut transcripts[idx]));
                    sink.instance_finished(&result);
                    results[idx] = Some(result);
                }
                interval = if changed { POLL_MIN } else { (interval.mul_f32(1.5)).min(POLL_MAX) };
                let draining = slots.values().any(|s| s.stopped_view.is_some());
                next_poll = Instant::now() + if draining { POLL_MIN.min(interval) } else { interval };
            }
        }
    }
    Ok(results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                InstanceResult::new(
                    &prepared[i].instance,
                    Status::Infrastructure,
                    Some("lost track of the task".into()),
                )
            })
        })
        .collect())
}

fn finish(p: &Prepared, s: Slot, transcript: Transcript) -> InstanceResult {
    let view = s.stopped_view.unwrap_or_default();
    let essential = p.task_definition.essential_containers();
    let mut verdict = classify_stopped(&view, &essential);
    // The entrypoint's own report of a failed phase wins over an exit code that says
    // otherwise (a wrapper that swallowed it).
    if verdict == Verdict::Passed && transcript.failure().is_some() {
        verdict = Verdict::Failed {
            exit_code: transcript.done.unwrap_or(1),
        };
    }
    result_of(&p.instance, Some(s.arn), verdict, transcript, s.stop)
}

/// One DescribeTasks per cluster and 100 tasks; returns whether any task changed state.
async fn poll_round(
    prepared: &[Prepared],
    clients: &[Clients],
    slots: &mut BTreeMap<usize, Slot>,
    sink: &Sink,
) -> bool {
    // One batch per cluster and Region: everything else shares its DescribeTasks calls.
    let mut by_cluster: BTreeMap<(String, Option<String>), Vec<usize>> = BTreeMap::new();
    for (idx, s) in slots.iter() {
        if s.stopped_view.is_none() {
            let settings = &prepared[*idx].settings;
            by_cluster
                .entry((settings.cluster.clone(), settings.region.clone()))
                .or_default()
                .push(*idx);
        }
    }
    let mut changed = false;
    for ((cluster, _), idxs) in by_cluster {
        for chunk in idxs.chunks(DESCRIBE_BATCH) {
            let arns: Vec<String> = chunk.iter().map(|i| slots[i].arn.clone()).collect();
            // No SDK retries here: a failed call is asked again by the next round, so a round
            // never holds more than one call per 100 tasks (a retried DescribeTasks of 100
            // tasks once put 3 calls into a round of 200 tasks in the benchmark).
            let out = match clients[chunk[0]]
                .ecs
                .describe_tasks()
                .cluster(&cluster)
                .set_tasks(Some(arns))
                .customize()
                .config_override(
                    aws_sdk_ecs::config::Builder::new().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    sink.warning(
                        None,
                        &format!(
                            "DescribeTasks failed (will retry): {}",
                            DisplayErrorContext(e)
                        ),
                    );
                    continue;
                }
            };
            for t in out.tasks() {
                let view = task_view(t);
                if let Some((_, s)) = slots.iter_mut().find(|(_, s)| s.arn == view.task_arn) {
                    s.misses = 0;
                    // Any move (PENDING, RUNNING, STOPPING...) brings the next round closer.
                    if s.last_status != view.last_status {
                        s.last_status = view.last_status.clone();
                        changed = true;
                    }
                    if view.is_stopped() {
                        s.task_stopped.store(true, Ordering::SeqCst);
                        s.stopped_view = Some(view);
                        changed = true;
                    }
                }
            }
            for f in out.failures() {
                let f = failure_view(f);
                if let Some((idx, s)) = slots
                    .iter_mut()
                    .find(|(_, s)| Some(&s.arn) == f.arn.as_ref())
                {
                    s.misses += 1;
                    if s.misses >= 3 {
                        sink.warning(
                            Some(&prepared[*idx].instance),
                            &format!("DescribeTasks: {}", f.describe()),
                        );
                        s.task_stopped.store(true, Ordering::SeqCst);
                        s.stopped_view = Some(TaskView {
                            task_arn: s.arn.clone(),
                            last_status: "STOPPED".into(),
                            stop_code: Some("TaskFailedToStart".into()),
                            stopped_reason: Some(format!(
                                "DescribeTasks reports the task {}",
                                f.describe()
                            )),
                            containers: Vec::new(),
                        });
                        changed = true;
                    }
                }
            }
        }
    }
    changed
}

#[allow(clippy::too_many_arguments)]
async fn launch(
    idx: usize,
    client: &aws_sdk_ecs::Client,
    root: &Path,
    p: &Prepared,
    arn: &str,
    opts: &RunOptions,
    pacer: &Pacer,
    permits: &Arc<Semaphore>,
    sink: &Sink,
) -> Msg {
    let not_started = |status, why: String| Msg::NotLaunched {
        idx,
        result: InstanceResult::new(&p.instance, status, Some(why)),
    };
    let permit = tokio::select! {
        p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return not_started(Status::Infrastructure, "runner closed".into()) },
        _ = opts.interrupt.cancelled() => return not_started(Status::Interrupted, "not started: interrupted".into()),
    };
    let mut backoff = opts.placement_backoff;
    for attempt in 1..=PLACEMENT_ATTEMPTS {
        if opts.interrupt.is_cancelled() {
            return not_started(Status::Interrupted, "not started: interrupted".into());
        }
        pacer.wait().await;
        let out = match run_task_request(client.run_task(), p, arn, root, &opts.run_id, attempt)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return not_started(
                    Status::Infrastructure,
                    format!("RunTask failed: {}", DisplayErrorContext(e)),
                );
            }
        };
        if let Some(task_arn) = out.tasks().first().and_then(|t| t.task_arn()) {
            return Msg::Launched {
                idx,
                arn: task_arn.to_owned(),
                permit,
            };
        }
        let failures: Vec<FailureView> = out.failures().iter().map(failure_view).collect();
        let why = if failures.is_empty() {
            "RunTask started no task and reported no failure (nothing could place it)".to_owned()
        } else {
            failures
                .iter()
                .map(FailureView::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let retry = failures.is_empty()
            || failures
                .iter()
                .all(|f| classify_run_failure(f) == RunFailure::Retry);
        if !retry || attempt == PLACEMENT_ATTEMPTS {
            return not_started(
                Status::Infrastructure,
                format!("placement failed after {attempt} attempt(s): {why}"),
            );
        }
        sink.warning(
            Some(&p.instance),
            &format!(
                "RunTask attempt {attempt}: {why}; retrying in {:.1}s",
                backoff.as_secs_f64()
            ),
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = opts.interrupt.cancelled() => return not_started(Status::Interrupted, "not started: interrupted".into()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
    not_started(Status::Infrastructure, "placement failed".into())
}

/// The awslogs stream of a task's container.
pub fn log_stream(settings: &EcsSettings, task_arn: &str) -> String {
    format!(
        "{}/{CONTAINER_NAME}/{}",
        settings.log_stream_prefix,
        crate::classify::task_id(task_arn)
    )
}

fn spawn_tail(
    idx: usize,
    logs: aws_sdk_cloudwatchlogs::Client,
    settings: &EcsSettings,
    task_arn: &str,
    task_stopped: Arc<AtomicBool>,
    pacer: Arc<Pacer>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let group = settings.log_group.clone();
    let stream = log_stream(settings, task_arn);
    tokio::spawn(async move {
        let mut token: Option<String> = None;
        let mut idle = Duration::from_secs(1);
        let mut missing_after_stop = 0;
        loop {
            let stopped = task_stopped.load(Ordering::SeqCst);
            pacer.wait().await;
            let r = logs
                .get_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            match r {
                Ok(out) => {
                    for e in out.events() {
                        for line in e.message().unwrap_or_default().lines() {
                            let _ = tx.send(Msg::Line {
                                idx,
                                line: line.to_owned(),
                            });
                        }
                    }
                    let next = out.next_forward_token().map(str::to_owned);
                    let at_end = next.is_none() || next == token;
                    token = next;
                    if at_end {
                        if stopped {
                            break;
                        }
                        idle = (idle * 2).min(Duration::from_secs(10));
                    } else {
                        idle = Duration::from_millis(200);
                    }
                }
                Err(e) => {
                    let not_found = e
                        .as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception());
                    if stopped {
                        missing_after_stop += 1;
                        // A stopped task whose stream never appeared: nothing more will come.
                        if not_found && missing_after_stop >= 2 || missing_after_stop >= 5 {
                            if !not_found {
                                let _ = tx.send(Msg::Line {
                                    idx,
                                    line: format!("(logs unavailable: {})", DisplayErrorContext(e)),
                                });
                            }
                            break;
                        }
                    }
                    // The stream may not exist yet: look again, less and less often.
                    idle = (idle * 2).min(Duration::from_secs(10));
                }
            }
            if task_stopped.load(Ordering::SeqCst) && !stopped {
                // Stopped while we read: drain at once.
                continue;
            }
            tokio::time::sleep(if stopped {
                Duration::from_millis(300)
            } else {
                idle
            })
            .await;
        }
        let _ = tx.send(Msg::LogsDone { idx });
    });
}

/// What `cleanup` did.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Tasks stopped.
    pub stopped: Vec<String>,
    /// Task definition revisions deregistered.
    pub deregistered: Vec<String>,
}

/// Stops this project's running tasks in `settings.cluster` and deregisters every ACTIVE
/// revision of its families.
///
/// # Errors
/// [`Error::Aws`] when a listing or a call fails.
pub async fn cleanup(kitchen_root: &Path, settings: &EcsSettings) -> Result<CleanupReport> {
    let clients = Clients::from_env(settings.region.as_deref()).await;
    let prefix = family_prefix(kitchen_root);
    let mut report = CleanupReport::default();
    let mut families = Vec::new();
    let mut pages = clients
        .ecs
        .list_task_definition_families()
        .family_prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_err("ListTaskDefinitionFamilies", e))?;
        families.extend(
            page.families()
                .iter()
                .filter(|f| f.starts_with(&prefix))
                .cloned(),
        );
    }
    for family in &families {
        let mut arns = Vec::new();
        let mut pages = clients
            .ecs
            .list_tasks()
            .cluster(&settings.cluster)
            .family(family)
            .desired_status(ecs_types::DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_err("ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        // Only what is not STOPPED yet (a task stopping keeps desiredStatus for a while).
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let out = clients
                .ecs
                .describe_tasks()
                .cluster(&settings.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| aws_err("DescribeTasks", e))?;
            for t in out.tasks() {
                let (Some(arn), Some(status)) = (t.task_arn(), t.last_status()) else {
                    continue;
                };
                if status == "STOPPED" {
                    continue;
                }
                clients
                    .ecs
                    .stop_task()
                    .cluster(&settings.cluster)
                    .task(arn)
                    .reason("ecs-runner cleanup")
                    .send()
                    .await
                    .map_err(|e| aws_err("StopTask", e))?;
                report.stopped.push(arn.to_owned());
            }
        }
        // ListTaskDefinitions' familyPrefix is a whole family name, not a prefix.
        let mut pages = clients
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(ecs_types::TaskDefinitionStatus::Active)
            .into_paginator()
            .send();
        let mut revisions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_err("ListTaskDefinitions", e))?;
            revisions.extend(page.task_definition_arns().iter().cloned());
        }
        for arn in revisions {
            clients
                .ecs
                .deregister_task_definition()
                .task_definition(&arn)
                .send()
                .await
                .map_err(|e| aws_err("DeregisterTaskDefinition", e))?;
            report.deregistered.push(arn);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::prepare;
    use crate::settings::Overrides;
    use kitchen_driver::config::{self, LoadOptions};

    /// A client that never sends: only its request builders are used.
    fn offline_client() -> aws_sdk_ecs::Client {
        let conf = aws_sdk_ecs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        aws_sdk_ecs::Client::from_conf(conf)
    }

    fn prepared(ecs_yaml: &str) -> (tempfile::TempDir, Prepared) {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "driver: {{name: docker, image: 'debian:12'}}\nprovisioner: {{name: shell, command: 'true'}}\n\
             verifier: {{name: shell}}\necs: {ecs_yaml}\nplatforms: [{{name: p}}]\nsuites: [{{name: s}}]\n"
        );
        std::fs::write(dir.path().join("kitchen.yml"), yaml).unwrap();
        let (project, doc) =
            config::load_with_document(&LoadOptions::new(dir.path().into(), Default::default()))
                .unwrap();
        let p = prepare(&project, &doc, &project.instances, &Overrides::default())
            .unwrap()
            .remove(0);
        (dir, p)
    }

    #[test]
    fn a_fargate_run_task_has_awsvpc_subnets_platform_version_and_a_client_token() {
        let (dir, p) = prepared(
            "{subnets: [subnet-1, subnet-2], security_groups: [sg-1], assign_public_ip: true, \
             platform_version: '1.4.0', tags: {team: qa}}",
        );
        let req = run_task_request(
            offline_client().run_task(),
            &p,
            "arn:td:1",
            dir.path(),
            "r0123456789ab",
            2,
        );
        let input = req.as_input().clone().build().unwrap();
        assert_eq!(input.launch_type(), Some(&ecs_types::LaunchType::Fargate));
        assert_eq!(input.platform_version(), Some("1.4.0"));
        assert_eq!(input.count(), Some(1));
        assert_eq!(input.started_by(), Some("r0123456789ab"));
        let vpc = input
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .unwrap();
        assert_eq!(vpc.subnets(), ["subnet-1", "subnet-2"]);
        assert_eq!(vpc.security_groups(), ["sg-1"]);
        assert_eq!(
            vpc.assign_public_ip(),
            Some(&ecs_types::AssignPublicIp::Enabled)
        );
        let token = input.client_token().unwrap();
        assert!(token.len() <= 64 && token.ends_with("-2"), "{token}");
        assert_ne!(token, client_token("r0123456789ab", "s-p", 3));
        let tags: Vec<(&str, &str)> = input
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert!(tags.contains(&(tag_keys::INSTANCE, "s-p")), "{tags:?}");
        assert!(tags.contains(&(tag_keys::RUN, "r0123456789ab")), "{tags:?}");
        assert!(tags.contains(&("team", "qa")), "{tags:?}");
    }

    #[test]
    fn a_capacity_provider_strategy_replaces_the_launch_type() {
        let (dir, p) = prepared(
            "{subnets: [s], capacity_provider_strategy: [{capacity_provider: FARGATE_SPOT, weight: 1}]}",
        );
        let input = run_task_request(offline_client().run_task(), &p, "td", dir.path(), "r1", 1)
            .as_input()
            .clone()
            .build()
            .unwrap();
        assert_eq!(input.launch_type(), None);
        assert_eq!(
            input.capacity_provider_strategy()[0].capacity_provider(),
            "FARGATE_SPOT"
        );
    }

    #[test]
    fn the_registered_definition_matches_the_rendered_one_and_carries_its_hash() {
        let (_dir, p) = prepared("{launch_type: EC2, memory: 128}");
        let input = register_request(&offline_client(), &p.task_definition)
            .unwrap()
            .as_input()
            .clone()
            .build()
            .unwrap();
        assert_eq!(input.network_mode(), Some(&ecs_types::NetworkMode::Bridge));
        assert_eq!(input.memory(), Some("128"));
        let c = &input.container_definitions()[0];
        assert_eq!(
            (c.name(), c.memory(), c.essential()),
            (Some(CONTAINER_NAME), Some(128), Some(true))
        );
        let log = c.log_configuration().unwrap();
        assert_eq!(log.log_driver(), &ecs_types::LogDriver::Awslogs);
        assert!(input.tags().iter().any(|t| t.key() == Some(DEFINITION_TAG)
            && t.value() == Some(definition_hash(&p.task_definition).as_str())));
    }

    #[test]
    fn log_streams_follow_the_awslogs_naming() {
        let (_dir, p) = prepared("{launch_type: EC2, log_stream_prefix: ci}");
        assert_eq!(
            log_stream(&p.settings, "arn:aws:ecs:us-east-1:1:task/c/abc123"),
            "ci/kitchen/abc123"
        );
    }
}
