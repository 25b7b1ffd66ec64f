//! The command line: `run`, `list`, `render`, `cleanup`, and the exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use kitchen_driver::config::{self, LoadOptions, Project};
use kitchen_driver::events::{EventBus, InstanceId, Level};
use kitchen_driver::report::{Environment, Format, Reports};
use serde_json::{Map, Value};

use crate::error::{EXIT_PASSED, EXIT_USAGE, Error, Result};
use crate::report::{InstanceResult, Sink, Status};
use crate::run::{self, RunOptions};
use crate::settings::{self, Overrides};

/// Run kitchen suites as Amazon ECS tasks, or locally on Docker from the same task definitions.
#[derive(Debug, Parser)]
#[command(name = "ecs-runner", version = crate::VERSION)]
#[non_exhaustive]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// The project directory (where kitchen.yml is).
    #[arg(long, global = true, default_value = ".")]
    pub project: PathBuf,
    /// Live output level: debug, info, warn, error.
    #[arg(short = 'l', long = "log-level", global = true, default_value = "info")]
    pub log_level: String,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum FormatArg {
    /// Lines prefixed by instance.
    Text,
    /// One JSON object per event.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Converge and verify instances as tasks (all by default).
    Run {
        /// Instance names or a regular expression (`all` for every instance).
        args: Vec<String>,
        /// Run the task definitions on the local Docker engine instead of ECS.
        #[arg(long)]
        local: bool,
        /// How many tasks at once (default: all).
        #[arg(short = 'c', long = "concurrency")]
        concurrency: Option<usize>,
        /// Write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        /// Stop a task that runs longer than this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// The cluster (overrides `ecs.cluster`).
        #[arg(long)]
        cluster: Option<String>,
        /// The first wait, in milliseconds, before a placement failure is retried (doubling).
        #[arg(
            long,
            env = "ECS_RUNNER_PLACEMENT_BACKOFF_MS",
            default_value = "2000",
            hide = true
        )]
        placement_backoff_ms: u64,
    },
    /// The instances, with cluster, launch type and image.
    List {
        /// Instance names or a regular expression.
        args: Vec<String>,
    },
    /// Print the task definition JSON that `run` would register for an instance.
    Render {
        /// The instance.
        instance: String,
        /// The cluster (overrides `ecs.cluster`).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Stop this project's running tasks and deregister its task-definition families (and
    /// remove leftover `--local` containers).
    Cleanup {
        /// The cluster (overrides `ecs.cluster`).
        #[arg(long)]
        cluster: Option<String>,
        /// Only the local Docker containers.
        #[arg(long)]
        local: bool,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ECS_RUNNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecs-runner: cannot start the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ecs-runner: {e}");
            e.exit_code()
        }
    }
}

fn load(dir: &std::path::Path) -> Result<(Project, Map<String, Value>)> {
    Ok(config::load_with_document(&LoadOptions::from_process(
        dir.to_path_buf(),
    ))?)
}

fn select(
    project: &Project,
    args: &[String],
) -> Result<Vec<kitchen_driver::config::InstanceConfig>> {
    let args = if args.is_empty() {
        vec!["all".to_owned()]
    } else {
        args.to_vec()
    };
    let selected = project.select(&args)?;
    if selected.is_empty() {
        return Err(Error::NoInstances(args.join("|")));
    }
    Ok(selected.into_iter().cloned().collect())
}

async fn dispatch(cli: Cli) -> Result<i32> {
    let (project, document) = load(&cli.project)?;
    match cli.command {
        Command::List { args } => {
            let instances = select(&project, &args)?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:<32} {:<20} {:<12} Image",
                "Instance", "Cluster", "Launch type"
            );
            for i in &instances {
                match settings::resolve(&document, i, &Overrides::default()) {
                    Ok(s) => {
                        let launch = if s.capacity_provider_strategy.is_empty() {
                            s.launch_type.as_str()
                        } else {
                            "(providers)"
                        };
                        let image = s.image.as_deref().unwrap_or("<none: set ecs.image>");
                        let _ = writeln!(
                            out,
                            "{:<32} {:<20} {:<12} {image}",
                            i.name, s.cluster, launch
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "{:<32} <{e}>", i.name);
                    }
                }
            }
            Ok(EXIT_PASSED)
        }
        Command::Render { instance, cluster } => {
            let instances = select(&project, std::slice::from_ref(&instance))?;
            let Some(exact) = instances
                .iter()
                .find(|i| i.name == instance)
                .or(instances.first())
            else {
                return Err(Error::NoInstances(instance));
            };
            let mut prepared = run::prepare(
                &project,
                &document,
                std::slice::from_ref(exact),
                &Overrides::default().with_cluster(cluster),
            )?;
            // The definition names its bundle image by digest: publish it (or find it).
            crate::image::publish_all(&project.kitchen_root, &mut prepared).await?;
            println!("{}", prepared[0].task_definition.json());
            Ok(EXIT_PASSED)
        }
        Command::Cleanup { cluster, local } => {
            let removed = crate::local::cleanup(&project.kitchen_root).await;
            match removed {
                Ok(ids) if !ids.is_empty() => {
                    println!("removed {} local container(s) and image(s)", ids.len())
                }
                Ok(_) => {}
                Err(e) if local => return Err(e),
                Err(_) => {}
            }
            if local {
                return Ok(EXIT_PASSED);
            }
            let instances = &project.instances;
            let first = instances
                .first()
                .ok_or_else(|| Error::NoInstances("all".into()))?;
            let s = settings::resolve(
                &document,
                first,
                &Overrides::default().with_cluster(cluster),
            )?;
            let report = crate::ecs::cleanup(&project.kitchen_root, &s).await?;
            println!(
                "stopped {} task(s), deregistered {} task definition revision(s) in cluster {}",
                report.stopped.len(),
                report.deregistered.len(),
                s.cluster
            );
            Ok(EXIT_PASSED)
        }
        Command::Run {
            args,
            local,
            concurrency,
            junit,
            format,
            timeout,
            cluster,
            placement_backoff_ms,
        } => {
            let instances = select(&project, &args)?;
            let mut prepared = run::prepare(
                &project,
                &document,
                &instances,
                &Overrides::default().with_cluster(cluster),
            )?;
            let images = crate::image::publish_all(&project.kitchen_root, &mut prepared).await?;
            let level = Level::parse(&cli.log_level).ok_or_else(|| {
                Error::Usage(format!(
                    "--log-level must be debug, info, warn or error, not `{}`",
                    cli.log_level
                ))
            })?;
            // kitchen-driver's own reporters, subscribed as its CLI subscribes them.
            let mut reports = Reports::default();
            reports.format = match format {
                FormatArg::Text => Format::Text,
                FormatArg::Json => Format::Json,
            };
            reports.level = level;
            reports.junit = junit;
            let env = Environment::from_process();
            let reporting = |e: kitchen_driver::Error| Error::Usage(format!("reports: {e}"));
            reports.prepare(&env).map_err(reporting)?;
            let bus = EventBus::new();
            reports
                .subscribe(&bus, &project.kitchen_root, &env)
                .map_err(reporting)?;
            let sink = Sink::new(bus, instances.iter().map(InstanceId::from));
            let opts = RunOptions::new(concurrency.unwrap_or(prepared.len()))
                .with_timeout(timeout.map(Duration::from_secs))
                .with_placement_backoff(Duration::from_millis(placement_backoff_ms));
            spawn_signal_handler(opts.interrupt.clone());
            sink.run_started(&opts.run_id, opts.concurrency);
            for (instance, published) in &images {
                let how = if published.built {
                    "built and pushed"
                } else {
                    "unchanged, reused from the registry"
                };
                sink.info(
                    instance,
                    Level::Info,
                    &format!("bundle image {} ({how})", published.reference),
                );
            }
            let results = if local {
                crate::local::run(&project.kitchen_root, &prepared, &opts, &sink).await
            } else {
                crate::ecs::run(&project.kitchen_root, &prepared, &opts, &sink).await
            };
            let results = match results {
                Ok(r) => r,
                Err(e) => {
                    // The reporters still close the run (logs, JUnit) before the error shows.
                    let failed: Vec<InstanceResult> = prepared
                        .iter()
                        .map(|p| {
                            InstanceResult::new(
                                &p.instance,
                                Status::Infrastructure,
                                Some(e.to_string()),
                            )
                        })
                        .collect();
                    for r in &failed {
                        sink.instance_finished(r);
                    }
                    run::finish_run(&sink, &failed)?;
                    return Err(e);
                }
            };
            run::finish_run(&sink, &results)
        }
    }
}

/// Ctrl-C and SIGTERM cancel `token`: every task started is stopped, then the run ends with 130.
fn spawn_signal_handler(token: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        token.cancel();
    });
}
