//! `--local`: the rendered task definitions run on the local Docker engine (bollard), with no
//! AWS at all.
//!
//! What ECS would do with the definition is reproduced: `entryPoint`, `command`,
//! `environment`, `workingDirectory`, the task's cpu and memory as limits (container-level
//! values win), `essential` (the task ends when an essential container exits; the others are
//! stopped), `dependsOn` (`START`, `COMPLETE`, `SUCCESS`, `HEALTHY`), and no network at all.
//! Logs come from Docker's log API. Every container is labelled with the project, instance and
//! run, and removed when the task ends, whatever happened.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListImagesOptions,
    LogsOptions, RemoveContainerOptions, RemoveImageOptions, StartContainerOptions,
    StopContainerOptions,
};
use futures::StreamExt;
use kitchen_driver::report::LineSplitter;
use tokio::sync::{Semaphore, mpsc};

use crate::classify::{ContainerView, TaskView, Verdict, classify_stopped};
use crate::error::{Error, Result};
use crate::report::{InstanceResult, Sink, Status};
use crate::run::{Prepared, RunOptions, StopCause, follow_line, result_of};
use crate::taskdef::{ContainerDefinition, TaskDefinition};

/// Labels on every local container.
pub mod labels {
    /// The project path.
    pub const PROJECT: &str = "kitchen.ecs.project";
    /// The instance.
    pub const INSTANCE: &str = "kitchen.ecs.instance";
    /// The run.
    pub const RUN: &str = "kitchen.ecs.run";
}

/// Runs every prepared instance on the local Docker engine, `opts.concurrency` at a time.
///
/// # Errors
/// [`Error::Docker`] when the engine cannot be reached at all; a failure of one instance is
/// its [`InstanceResult`].
pub async fn run(
    kitchen_root: &Path,
    prepared: &[Prepared],
    opts: &RunOptions,
    sink: &Sink,
) -> Result<Vec<InstanceResult>> {
    let docker = Docker::connect_with_defaults().map_err(|e| Error::docker("connecting", e))?;
    docker.ping().await.map_err(|e| Error::docker("ping", e))?;
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut handles = Vec::new();
    for p in prepared {
        let (docker, permits, sink, opts, p) = (
            docker.clone(),
            permits.clone(),
            sink.clone(),
            opts.clone(),
            p.clone(),
        );
        let root = kitchen_root.to_string_lossy().into_owned();
        handles.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            if opts.interrupt.is_cancelled() {
                return InstanceResult::new(
                    &p.instance,
                    Status::Interrupted,
                    Some("not started: interrupted".into()),
                );
            }
            run_one(&docker, &root, &p, &opts, &sink).await
        }));
    }
    let mut results = Vec::new();
    for (h, p) in handles.into_iter().zip(prepared) {
        let r = h.await.unwrap_or_else(|e| {
            InstanceResult::new(
                &p.instance,
                Status::Infrastructure,
                Some(format!("runner task failed: {e}")),
            )
        });
        sink.instance_finished(&r);
        results.push(r);
    }
    remove_bundle_images(&docker, prepared).await;
    Ok(results)
}

enum Msg {
    Line(String, String),
    Ended(String),
}

async fn run_one(
    docker: &Docker,
    root: &str,
    p: &Prepared,
    opts: &RunOptions,
    sink: &Sink,
) -> InstanceResult {
    let mut created: Vec<(String, String)> = Vec::new();
    let outcome = run_task(docker, root, p, opts, sink, &mut created).await;
    // Nothing is left behind, whatever happened above.
    for (_, id) in &created {
        let _ = docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    match outcome {
        Ok(r) => r,
        Err(e) => InstanceResult::new(&p.instance, Status::Infrastructure, Some(e.to_string())),
    }
}

/// Pulls `image` unless the engine has it.
async fn ensure_image(docker: &Docker, image: &str) -> std::result::Result<(), String> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let mut pull = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = pull.next().await {
        match item {
            Ok(info) => {
                if let Some(d) = info.error_detail {
                    return Err(d.message.unwrap_or_default());
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Removes the bundle images a run pulled (they carry [`crate::image::PROJECT_LABEL`]); an
/// image another container still uses stays.
async fn remove_bundle_images(docker: &Docker, prepared: &[Prepared]) {
    let mut seen = std::collections::BTreeSet::new();
    for p in prepared.iter().filter(|p| p.bundle_image.is_some()) {
        for c in &p.task_definition.container_definitions {
            if seen.insert(c.image.clone()) {
                let _ = docker
                    .remove_image(&c.image, None::<RemoveImageOptions>, None)
                    .await;
            }
        }
    }
}

/// The Docker body for one container of the task definition (pure).
pub fn create_body(
    td: &TaskDefinition,
    c: &ContainerDefinition,
    label_values: [&str; 3],
) -> ContainerCreateBody {
    let mib = 1024 * 1024;
    let memory = c
        .memory
        .map(i64::from)
        .or_else(|| td.memory.parse::<i64>().ok())
        .map(|m| m * mib);
    let cpu_units = c.cpu.map(i64::from).or_else(|| td.cpu.parse::<i64>().ok());
    let labels: HashMap<String, String> = [labels::PROJECT, labels::INSTANCE, labels::RUN]
        .into_iter()
        .zip(label_values)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    ContainerCreateBody {
        image: Some(c.image.clone()),
        entrypoint: (!c.entry_point.is_empty()).then(|| c.entry_point.clone()),
        cmd: (!c.command.is_empty()).then(|| c.command.clone()),
        env: Some(
            c.environment
                .iter()
                .map(|kv| format!("{}={}", kv.name, kv.value))
                .collect(),
        ),
        working_dir: c.working_directory.clone(),
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            memory,
            // ECS CPU units: 1024 is one vCPU.
            nano_cpus: cpu_units.map(|u| u * 1_000_000_000 / 1024),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether `c`'s `dependsOn` conditions hold, given the containers' states; `Err` when one can
/// never hold (a `SUCCESS` dependency that failed).
fn dependencies_met(
    c: &ContainerDefinition,
    states: &BTreeMap<String, DepState>,
) -> std::result::Result<bool, String> {
    for d in &c.depends_on {
        let s = states
            .get(&d.container_name)
            .copied()
            .unwrap_or(DepState::Created);
        let ok = match d.condition.as_str() {
            "START" => s != DepState::Created,
            "COMPLETE" => matches!(s, DepState::Exited(_)),
            "SUCCESS" => match s {
                DepState::Exited(0) => true,
                DepState::Exited(code) => {
                    return Err(format!(
                        "dependency {} exited with code {code}, so {} never started",
                        d.container_name, c.name
                    ));
                }
                _ => false,
            },
            // No health checks are rendered: healthy once running.
            _ => matches!(s, DepState::Running),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepState {
    Created,
    Running,
    Exited(i64),
}

async fn run_task(
    docker: &Docker,
    root: &str,
    p: &Prepared,
    opts: &RunOptions,
    sink: &Sink,
    created: &mut Vec<(String, String)>,
) -> Result<InstanceResult> {
    let td = &p.task_definition;
    let suffix = &opts.run_id;
    for c in &td.container_definitions {
        let name = format!("{}-{}-{suffix}", td.family, c.name);
        // As the ECS agent does: an image that is not here is pulled (bundle images by
        // digest from `ecs.registry`).
        if let Err(why) = ensure_image(docker, &c.image).await {
            let mut r = InstanceResult::new(
                &p.instance,
                Status::Infrastructure,
                Some(format!(
                    "CannotPullContainerError: {} ({}): {why}",
                    c.name, c.image
                )),
            );
            r.task = Some(name);
            return Ok(r);
        }
        let body = create_body(td, c, [root, &p.instance, &opts.run_id]);
        match docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
        {
            Ok(r) => created.push((c.name.clone(), r.id)),
            Err(e) => {
                // As ECS's CannotCreateContainerError: the engine refused the container.
                let mut r = InstanceResult::new(
                    &p.instance,
                    Status::Infrastructure,
                    Some(format!(
                        "CannotCreateContainerError: {} ({}): {e}",
                        c.name, c.image
                    )),
                );
                r.task = Some(name);
                return Ok(r);
            }
        }
    }
    let ids: BTreeMap<String, String> = created.iter().cloned().collect();
    let main_id = ids.values().next().cloned().unwrap_or_default();
    sink.task_started(&p.instance, &format!("local container {}", short(&main_id)));
    let essential: Vec<&str> = td.essential_containers();
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut states: BTreeMap<String, DepState> =
        ids.keys().map(|k| (k.clone(), DepState::Created)).collect();
    let mut transcript = p.transcript();
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut stopped: Option<StopCause> = None;
    let mut never_started: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        // Start whatever may start now.
        for c in &td.container_definitions {
            if states.get(&c.name) != Some(&DepState::Created)
                || never_started.contains(&c.name)
                || stopped.is_some()
            {
                continue;
            }
            match dependencies_met(c, &states) {
                Ok(true) => {
                    let id = &ids[&c.name];
                    docker
                        .start_container(id, None::<StartContainerOptions>)
                        .await
                        .map_err(|e| {
                            Error::docker(
                                format!("starting container {} of {}", c.name, p.instance),
                                e,
                            )
                        })?;
                    states.insert(c.name.clone(), DepState::Running);
                    spawn_logs(docker.clone(), c.name.clone(), id.clone(), tx.clone());
                }
                Ok(false) => {}
                Err(why) => {
                    sink.warning(Some(&p.instance), &why);
                    never_started.push(c.name.clone());
                }
            }
        }
        let essential_done = essential
            .iter()
            .any(|e| matches!(states.get(*e), Some(DepState::Exited(_))))
            || essential
                .iter()
                .all(|e| never_started.iter().any(|n| n == e));
        let all_done = states.values().all(|s| *s != DepState::Running);
        if all_done && (essential_done || stopped.is_some()) {
            break;
        }
        if essential_done || stopped.is_some() {
            // ECS stops the other containers once an essential one exits.
            for (name, s) in &states {
                if *s == DepState::Running {
                    let _ = docker
                        .stop_container(
                            &ids[name],
                            Some(StopContainerOptions {
                                t: Some(2),
                                ..Default::default()
                            }),
                        )
                        .await;
                }
            }
        }
        let sleep_until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Line(name, line)) => {
                    if essential.contains(&name.as_str()) {
                        follow_line(sink, &p.instance, &mut transcript, &line);
                    } else {
                        sink.info(&p.instance, kitchen_driver::events::Level::Info, &format!("[{name}] {line}"));
                    }
                }
                Some(Msg::Ended(name)) => {
                    let code = docker
                        .inspect_container(&ids[&name], None)
                        .await
                        .ok()
                        .and_then(|i| i.state)
                        .and_then(|s| s.exit_code)
                        .unwrap_or(-1);
                    states.insert(name, DepState::Exited(code));
                }
                None => {}
            },
            _ = opts.interrupt.cancelled(), if stopped.is_none() => {
                stopped = Some(StopCause::Interrupted);
            }
            _ = tokio::time::sleep_until(sleep_until), if stopped.is_none() && deadline.is_some() => {
                stopped = opts.timeout.map(StopCause::TimedOut);
            }
            _ = tick.tick() => {}
        }
        if let Some(cause) = &stopped
            && states.values().any(|s| *s == DepState::Running)
        {
            sink.warning(
                Some(&p.instance),
                &format!("stopping the task: {}", cause.reason()),
            );
            for (name, s) in &states {
                if *s == DepState::Running {
                    let _ = docker
                        .stop_container(
                            &ids[name],
                            Some(StopContainerOptions {
                                t: Some(2),
                                ..Default::default()
                            }),
                        )
                        .await;
                }
            }
        }
    }
    let task = task_view(docker, &ids, &states, stopped.as_ref()).await;
    let verdict = classify_stopped(&task, &essential);
    let mut r = result_of(
        &p.instance,
        Some(format!("local container {}", short(&main_id))),
        verdict,
        transcript,
        stopped,
    );
    if r.status == Status::Passed && matches!(classify_stopped(&task, &essential), Verdict::Passed)
    {
        r.message = None;
    }
    Ok(r)
}

/// The task as DescribeTasks would show it, from Docker's container states.
async fn task_view(
    docker: &Docker,
    ids: &BTreeMap<String, String>,
    states: &BTreeMap<String, DepState>,
    stopped: Option<&StopCause>,
) -> TaskView {
    let mut containers = Vec::new();
    let mut reason = None;
    for (name, id) in ids {
        let inspect = docker.inspect_container(id, None).await.ok();
        let state = inspect.as_ref().and_then(|i| i.state.clone());
        let oom = state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false);
        let ran = matches!(states.get(name), Some(DepState::Exited(_)));
        if oom {
            reason = Some(format!(
                "OutOfMemoryError: container {name} was killed for exceeding its memory limit"
            ));
        }
        containers.push(ContainerView {
            name: name.clone(),
            exit_code: ran.then(|| state.as_ref().and_then(|s| s.exit_code).unwrap_or(-1) as i32),
            reason: state.and_then(|s| s.error).filter(|e| !e.is_empty()),
            last_status: Some("STOPPED".into()),
        });
    }
    TaskView {
        task_arn: ids.values().next().cloned().unwrap_or_default(),
        last_status: "STOPPED".into(),
        stop_code: Some(
            if stopped.is_some() {
                "UserInitiated"
            } else {
                "EssentialContainerExited"
            }
            .into(),
        ),
        stopped_reason: stopped.map(StopCause::reason).or(reason),
        containers,
    }
}

fn spawn_logs(docker: Docker, name: String, id: String, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut stream = docker.logs(
            &id,
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let mut out = LineSplitter::default();
        let mut err = LineSplitter::default();
        while let Some(Ok(chunk)) = stream.next().await {
            let (splitter, bytes) = match chunk {
                LogOutput::StdErr { message } => (&mut err, message),
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => (&mut out, message),
            };
            splitter.push(&bytes, |l| {
                let _ = tx.send(Msg::Line(name.clone(), l.to_owned()));
            });
        }
        out.finish(|l| {
            let _ = tx.send(Msg::Line(name.clone(), l.to_owned()));
        });
        err.finish(|l| {
            let _ = tx.send(Msg::Line(name.clone(), l.to_owned()));
        });
        let _ = tx.send(Msg::Ended(name));
    });
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Removes local containers and bundle images of this project left by an interrupted process
/// (`cleanup`).
///
/// # Errors
/// [`Error::Docker`] when the engine cannot be reached.
pub async fn cleanup(kitchen_root: &Path) -> Result<Vec<String>> {
    let docker = Docker::connect_with_defaults().map_err(|e| Error::docker("connecting", e))?;
    let filter = format!("{}={}", labels::PROJECT, kitchen_root.to_string_lossy());
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), vec![filter])])),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("listing containers", e))?;
    let mut removed = Vec::new();
    for c in list {
        if let Some(id) = c.id {
            docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| Error::docker(format!("removing container {id}"), e))?;
            removed.push(id);
        }
    }
    // Bundle images this project built or pulled, left by a run that was killed.
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!(
                    "{}={}",
                    labels::PROJECT,
                    kitchen_root.to_string_lossy()
                )],
            )])),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("listing images", e))?;
    for i in images {
        docker
            .remove_image(
                &i.id,
                Some(RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await
            .map_err(|e| Error::docker(format!("removing image {}", i.id), e))?;
        removed.push(i.id);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::{ContainerDependency, KeyValue};

    fn def(name: &str, deps: &[(&str, &str)]) -> ContainerDefinition {
        serde_json::from_value(serde_json::json!({
            "name": name, "image": "kitchen/busybox:latest", "essential": true,
            "dependsOn": deps.iter().map(|(c, k)| serde_json::json!({"containerName": c, "condition": k})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    #[test]
    fn the_body_carries_what_ecs_would_apply() {
        let mut c = def("kitchen", &[]);
        c.entry_point = vec!["/bin/sh".into(), "-c".into()];
        c.command = vec!["echo hi".into()];
        c.environment = vec![KeyValue {
            name: "A".into(),
            value: "b=c".into(),
        }];
        c.working_directory = Some("/tmp".into());
        let td: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "f", "networkMode": "bridge", "requiresCompatibilities": ["EC2"],
            "cpu": "512", "memory": "256", "containerDefinitions": []
        }))
        .unwrap();
        let body = create_body(&td, &c, ["/p", "i", "r1"]);
        assert_eq!(body.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(body.cmd.unwrap(), ["echo hi"]);
        assert_eq!(body.env.unwrap(), ["A=b=c"]);
        assert_eq!(body.working_dir.as_deref(), Some("/tmp"));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.memory, Some(256 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(body.labels.unwrap()[labels::RUN], "r1");
    }

    #[test]
    fn depends_on_conditions() {
        let c = def("app", &[("db", "START"), ("init", "SUCCESS")]);
        let mut s = BTreeMap::new();
        s.insert("db".to_owned(), DepState::Created);
        s.insert("init".to_owned(), DepState::Running);
        assert_eq!(dependencies_met(&c, &s), Ok(false));
        s.insert("db".to_owned(), DepState::Running);
        assert_eq!(dependencies_met(&c, &s), Ok(false));
        s.insert("init".to_owned(), DepState::Exited(0));
        assert_eq!(dependencies_met(&c, &s), Ok(true));
        s.insert("init".to_owned(), DepState::Exited(1));
        assert!(dependencies_met(&c, &s).is_err());
        let c = def("app", &[("init", "COMPLETE")]);
        assert_eq!(dependencies_met(&c, &s), Ok(true));
        let _ = ContainerDependency {
            container_name: String::new(),
            condition: String::new(),
        };
    }
}
