//! What every backend shares: preparing instances (all checks before any task starts),
//! following a task's output, and turning a stopped task into an [`InstanceResult`].

use std::time::Duration;

use kitchen_driver::config::{InstanceConfig, Project};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::bundle::{Plan, Verify};
use crate::classify::Verdict;
use crate::error::Result;
use crate::image::{self, PendingImage, Registry};
use crate::report::{InstanceResult, Sink, Status};
use crate::settings::{self, BundleDelivery, EcsSettings, Overrides};
use crate::taskdef::{self, Delivery, TaskDefinition};
use crate::transcript::{Line, Phase, Transcript};

/// An instance ready to run: its settings, plan and task definition.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Prepared {
    /// The instance's name.
    pub instance: String,
    /// Its merged `ecs:` settings.
    pub settings: EcsSettings,
    /// What the task does.
    pub plan: Plan,
    /// The task definition to register (or run locally).
    pub task_definition: TaskDefinition,
    /// The bundle image still to publish ([`crate::image::publish_all`] puts its digest into
    /// the definition); `None` when the bundle travels inline.
    pub bundle_image: Option<PendingImage>,
}

impl Prepared {
    /// A fresh transcript reader for this instance's task.
    pub fn transcript(&self) -> Transcript {
        let timing = matches!(&self.plan.verify, Verify::Bats { timing: true, .. });
        Transcript::new(timing)
    }
}

/// Prepares every instance: settings, plan, bundle and task definition. Nothing starts unless
/// all of them are valid.
///
/// # Errors
/// The first instance's [`crate::Error::Settings`] or [`crate::Error::Unsupported`].
pub fn prepare(
    project: &Project,
    document: &Map<String, Value>,
    instances: &[InstanceConfig],
    overrides: &Overrides,
) -> Result<Vec<Prepared>> {
    instances
        .iter()
        .map(|i| {
            let settings = settings::resolve(document, i, overrides)?;
            let plan = Plan::for_instance(project, i)?;
            let bundle = plan.bundle()?;
            let root = &project.kitchen_root;
            let inline = taskdef::render_with(root, &i.name, &settings, Delivery::Inline(&bundle))?;
            // Inline when it fits (or is asked for), else an image, which needs a registry.
            let too_big = taskdef::check_inline_size(&i.name, &inline).err();
            let registry = match (settings.bundle, too_big, &settings.registry) {
                (BundleDelivery::Inline, Some(e), _) | (BundleDelivery::Auto, Some(e), None) => {
                    return Err(e);
                }
                (BundleDelivery::Image, _, None) => {
                    return Err(crate::Error::settings(
                        &i.name,
                        "`bundle: image` needs `registry: HOST[:PORT][/NAMESPACE]`",
                    ));
                }
                (BundleDelivery::Image, _, Some(r)) | (BundleDelivery::Auto, Some(_), Some(r)) => {
                    Some(r)
                }
                _ => None,
            };
            let (task_definition, bundle_image) = if let Some(registry) = registry {
                let registry = Registry::parse(&i.name, registry)?;
                let base = settings.image_for(&i.name)?.to_owned();
                let td = taskdef::render_with(
                    root,
                    &i.name,
                    &settings,
                    Delivery::Image(&image::placeholder(&registry)),
                )?;
                let pending = PendingImage {
                    registry,
                    base,
                    archive: bundle.archive,
                };
                (td, Some(pending))
            } else {
                (inline, None)
            };
            Ok(Prepared {
                instance: i.name.clone(),
                settings,
                plan,
                task_definition,
                bundle_image,
            })
        })
        .collect()
}

/// How to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// How many tasks at once (at least 1).
    pub concurrency: usize,
    /// Stop a task that runs longer than this.
    pub timeout: Option<Duration>,
    /// The run's ID (`startedBy`, tags, local container labels).
    pub run_id: String,
    /// Cancelled on Ctrl-C or SIGTERM: every task started is stopped.
    pub interrupt: CancellationToken,
    /// The first wait before a placement failure is retried (doubling, at most 60 s).
    pub placement_backoff: Duration,
}

impl RunOptions {
    /// Options with a fresh run ID and no timeout.
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency: concurrency.max(1),
            timeout: None,
            run_id: new_run_id(),
            interrupt: CancellationToken::new(),
            placement_backoff: Duration::from_secs(2),
        }
    }

    /// Sets the first placement-retry wait.
    #[must_use]
    pub fn with_placement_backoff(mut self, backoff: Duration) -> Self {
        self.placement_backoff = backoff;
        self
    }

    /// Sets `--timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A run ID: `r` and 12 hex digits from the clock and the process ID (fits `startedBy`).
pub fn new_run_id() -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{now}-{}", std::process::id()));
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("r{hex}")
}

/// Why this run stopped a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopCause {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--timeout` elapsed.
    TimedOut(Duration),
}

impl StopCause {
    /// The reason given to StopTask (at most 255 characters).
    pub fn reason(&self) -> String {
        match self {
            StopCause::Interrupted => "ecs-runner: interrupted (Ctrl-C or SIGTERM)".into(),
            StopCause::TimedOut(d) => format!("ecs-runner: --timeout of {}s elapsed", d.as_secs()),
        }
    }
}

/// Feeds a task's lines to its transcript and the sink.
pub(crate) fn follow_line(sink: &Sink, instance: &str, transcript: &mut Transcript, line: &str) {
    match transcript.push(line) {
        Line::Output(l) if l.is_empty() => {}
        Line::Output(l) => sink.output(instance, &l),
        Line::PhaseStarted(step) => sink.step_started(instance, step),
        Line::PhaseFinished(step, code) => {
            let why = if code == 0 {
                None
            } else {
                transcript.failure()
            };
            sink.step_finished(instance, step, code, why);
        }
        Line::Cases(cases) => {
            for c in &cases {
                sink.test_case(instance, c);
            }
        }
    }
}

/// The result of a stopped task, from its verdict, its transcript and whether this run
/// stopped it.
pub(crate) fn result_of(
    instance: &str,
    task: Option<String>,
    verdict: Verdict,
    transcript: Transcript,
    stopped: Option<StopCause>,
) -> InstanceResult {
    let (status, message) = match (&verdict, &stopped) {
        (_, Some(StopCause::Interrupted)) => {
            (Status::Interrupted, Some(StopCause::Interrupted.reason()))
        }
        (_, Some(cause @ StopCause::TimedOut(_))) => (
            Status::Failed,
            Some(format!("{}; the task was stopped", cause.reason())),
        ),
        (Verdict::Passed, None) => (Status::Passed, None),
        (Verdict::Failed { exit_code }, None) => (
            Status::Failed,
            Some(transcript.failure().unwrap_or_else(|| {
                format!("the essential container exited with code {exit_code}")
            })),
        ),
        (Verdict::Infrastructure { reason }, None) => {
            (Status::Infrastructure, Some(reason.clone()))
        }
        (Verdict::Stopped { reason }, None) => (
            Status::Infrastructure,
            Some(format!("stopped outside this run: {reason}")),
        ),
    };
    let mut r = InstanceResult::new(instance, status, message);
    r.failed_phase = match (transcript.converge, transcript.verify) {
        (Some(c), _) if c != 0 => Some(Phase::Converge),
        (_, Some(v)) if v != 0 => Some(Phase::Verify),
        _ => None,
    };
    r.task = task;
    r.stopped_by_runner = stopped.is_some();
    r.cases = transcript.cases;
    r
}

/// Emits the closing events, finishes the reporters and returns the exit code.
///
/// # Errors
/// When a reporter cannot write its file (`--junit`).
pub fn finish_run(sink: &Sink, results: &[InstanceResult]) -> Result<i32> {
    let exit_code = crate::report::exit_code(results);
    let stopped: Vec<&str> = results
        .iter()
        .filter(|r| r.stopped_by_runner)
        .map(|r| r.instance.as_str())
        .collect();
    if !stopped.is_empty() {
        sink.warning(
            None,
            &format!(
                "stopped the tasks of {} instance(s): {}",
                stopped.len(),
                stopped.join(", ")
            ),
        );
    }
    sink.run_finished(results, exit_code);
    sink.bus()
        .finish()
        .map_err(|e| crate::Error::Usage(format!("writing the reports: {e}")))?;
    Ok(exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitchen_driver::config::{self, LoadOptions};

    /// Prepares the one instance of a project with this `ecs:` mapping and `size` bytes of
    /// provisioner data that gzip cannot shrink.
    fn prepare_with(ecs_yaml: &str, size: usize) -> Result<Prepared> {
        let dir = tempfile::tempdir().unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/blob"), data).unwrap();
        let yaml = format!(
            "driver: {{name: docker, image: 'debian:12'}}\n\
             provisioner: {{name: shell, data_path: data, command: 'true'}}\n\
             verifier: {{name: shell}}\necs: {ecs_yaml}\nplatforms: [{{name: p}}]\nsuites: [{{name: s}}]\n"
        );
        std::fs::write(dir.path().join("kitchen.yml"), yaml).unwrap();
        let (project, doc) =
            config::load_with_document(&LoadOptions::new(dir.path().into(), Default::default()))
                .unwrap();
        prepare(&project, &doc, &project.instances, &Overrides::default()).map(|mut v| v.remove(0))
    }

    #[test]
    fn a_bundle_that_fits_travels_inline_unless_an_image_is_asked_for() {
        let p = prepare_with("{registry: 'localhost:5000'}", 10).unwrap();
        assert!(p.bundle_image.is_none());
        assert_eq!(
            p.task_definition.container_definitions[0].environment[0].name,
            taskdef::BUNDLE_VAR
        );
        let p = prepare_with("{registry: 'localhost:5000/t', bundle: image}", 10).unwrap();
        let pending = p.bundle_image.unwrap();
        assert_eq!(pending.base, "debian:12");
        let c = &p.task_definition.container_definitions[0];
        assert_eq!(c.image, "localhost:5000/t/kitchen-ecs-bundles:unpublished");
        assert_eq!(c.entry_point, ["/bin/sh", crate::bundle::ENTRYPOINT_PATH]);
        assert!(c.environment.is_empty() && c.command.is_empty());
        let e = prepare_with("{bundle: image}", 10).unwrap_err().to_string();
        assert!(e.contains("`bundle: image` needs `registry"), "{e}");
    }

    #[test]
    fn a_bundle_too_big_becomes_an_image_or_is_refused_with_what_to_do() {
        let big = 80 * 1024;
        assert!(
            prepare_with("{registry: 'localhost:5000'}", big)
                .unwrap()
                .bundle_image
                .is_some()
        );
        for refused in ["{}", "{registry: 'localhost:5000', bundle: inline}"] {
            let e = prepare_with(refused, big).unwrap_err().to_string();
            assert!(
                e.contains("over ECS's 65536") && e.contains("registry"),
                "{e}"
            );
        }
    }
}
