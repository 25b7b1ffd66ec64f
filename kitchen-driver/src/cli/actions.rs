//! The action commands: create, converge, setup, verify, destroy, test, login and exec.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::exit;
use crate::config::{self, InstanceConfig, LoadOptions, Project};
use crate::error::{Error, Result};
use crate::events::{self, Counts, Event, EventBus, InstanceId, RunFinished, Warning};
use crate::lifecycle::{self, DestroyMode, RunOptions, Runner};
use crate::report::{ColorChoice, Environment, FailureOutput, Format, Level, Reports};
use crate::state::StateFile;

/// Flags shared by the action commands.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// `all`, an exact instance name, or a regular expression (several are joined with `|`).
    pub instances: Vec<String>,
    /// Run this many instances at once; without N, all of them.
    #[arg(short = 'c', long, num_args = 0..=1, default_missing_value = "0", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Deprecated alias of `--concurrency` with no N.
    #[arg(short = 'p', long)]
    pub parallel: bool,
    /// After the first failure, start no further action.
    #[arg(short = 'f', long)]
    pub fail_fast: bool,
    /// debug, info, warn, error or fatal.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
    /// Where test files live (default `<kitchen_root>/test/integration`).
    #[arg(short = 't', long)]
    pub test_base_path: Option<PathBuf>,
    /// Also write a JUnit XML report here: one suite per instance, one case per verifier
    /// test, failures with their reason and output (written even when actions fail; missing
    /// directories are created, and an unwritable path is refused before the run starts).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// What stdout carries: `text` (lines for people, then the summary) or `json` (one JSON
    /// object per event, see EVENTS.md).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: Format,
    /// Colour the text output: auto (on a terminal, unless NO_COLOR is set or TERM=dumb),
    /// always or never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
    /// When to show a failed instance's output: immediate (as it happens), or final (also
    /// again, gathered under its name, before the summary).
    #[arg(long, value_name = "WHEN", default_value = "immediate")]
    pub failure_output: FailureOutput,
    /// Write the summary as Markdown here (default under GitHub Actions: append to
    /// $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "PATH")]
    pub summary_md: Option<PathBuf>,
    /// Use the converge cache for every instance, as the driver key `converge_cache: true`
    /// does per platform or suite: a converged instance is published as an image and the next
    /// create with the same inputs starts from it and skips the converge.
    #[arg(long)]
    pub converge_cache: bool,
    /// Stop any step (create, converge, setup, verify, destroy, reset) of an instance that runs
    /// longer than SECONDS: the step fails and its commands are killed, in the instance and
    /// on the host. Wins over the driver's `step_timeout`.
    #[arg(long, value_name = "SECONDS", value_parser = step_timeout_arg)]
    pub step_timeout: Option<std::time::Duration>,
}

fn step_timeout_arg(s: &str) -> std::result::Result<std::time::Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    lifecycle::parse_step_timeout(secs)
}

impl ActionArgs {
    /// The flags of a command that has only instances and a log level (`exec`).
    pub fn for_instances(instances: Vec<String>, log_level: String) -> Self {
        Self {
            instances,
            concurrency: None,
            parallel: false,
            fail_fast: false,
            log_level,
            test_base_path: None,
            junit: None,
            format: Format::Text,
            color: ColorChoice::Auto,
            failure_output: FailureOutput::Immediate,
            summary_md: None,
            converge_cache: false,
            step_timeout: None,
        }
    }

    fn reports(&self, level: Level) -> Reports {
        Reports {
            format: self.format,
            level,
            color: self.color,
            failure_output: self.failure_output,
            junit: self.junit.clone(),
            summary_md: self.summary_md.clone(),
        }
    }
}

/// `test` flags.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Flags shared with the other actions.
    #[command(flatten)]
    pub common: ActionArgs,
    /// When to destroy at the end: passing, always or never.
    #[arg(short = 'd', long, default_value = "passing")]
    pub destroy: DestroyMode,
}

/// `login INSTANCE|REGEX`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// An exact instance name or a regular expression matching exactly one instance.
    pub instance: String,
    /// debug, info, warn, error or fatal.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
}

/// `exec INSTANCE|REGEX -c CMD`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// `all`, an exact instance name, or a regular expression.
    pub instances: Vec<String>,
    /// The command to run (through `sh -c`).
    #[arg(short = 'c', long)]
    pub command: String,
    /// debug, info, warn, error or fatal.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
}

/// Loads the project and selects instances (test-kitchen's rules, see
/// [`Project::select`]).
fn load_selected(
    opts: &LoadOptions,
    args: &[String],
    test_base_path: Option<&PathBuf>,
    log_level: &str,
) -> Result<(Project, Vec<InstanceConfig>)> {
    let mut opts = opts.clone().with_log_level(log_level);
    if let Some(t) = test_base_path {
        opts = opts.with_test_base_path(t);
    }
    let project = config::load(&opts)?;
    let selected = project.select(args)?.into_iter().cloned().collect();
    Ok((project, selected))
}

fn level_of(s: &str) -> Level {
    Level::parse(s).unwrap_or_else(|| {
        eprintln!("kitchen-driver: WARN log level `{s}` is not debug, info, warn, error or fatal; using info");
        Level::Info
    })
}

fn init_tracing(level: Level) {
    let filter = match level {
        Level::Debug => "kitchen_driver=debug",
        Level::Info | Level::Warn => "kitchen_driver=warn",
        _ => "kitchen_driver=error",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITCHEN_DRIVER_TRACE")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Startup {
            action: "start the async runtime",
            source,
        })
}

pub(super) fn run_lifecycle(
    opts: &LoadOptions,
    args: ActionArgs,
    command: lifecycle::Command,
) -> Result<()> {
    let level = level_of(&args.log_level);
    init_tracing(level);
    let (project, instances) = load_selected(
        opts,
        &args.instances,
        args.test_base_path.as_ref(),
        &args.log_level,
    )?;
    let concurrency = match (args.parallel, args.concurrency) {
        (true, _) | (_, Some(0)) => instances.len(),
        (false, Some(n)) => n.min(instances.len()),
        (false, None) => 1,
    };
    let env = Environment::from_process();
    let reports = args.reports(level);
    reports.prepare(&env)?;
    let bus = EventBus::new();
    reports.subscribe(&bus, &project.kitchen_root, &env)?;
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let runner = Runner::new(&project.kitchen_root, &project.test_base_path, bus.clone())
        .with_command_line(std::env::args().collect())
        .with_converge_cache(args.converge_cache);
    let canceller = runner.canceller();
    let outcomes = rt.block_on(async {
        let watcher = tokio::spawn(watch_interrupts(canceller.clone(), bus.clone()));
        let outcomes = runner
            .run(
                &instances,
                &command,
                RunOptions::new(concurrency, args.fail_fast).with_step_timeout(args.step_timeout),
            )
            .await;
        watcher.abort();
        // Commands stopped in their instances (a step timeout, an abort) are being killed
        // there: let those kills finish before the process ends.
        crate::transport::finish_pending_kills(std::time::Duration::from_secs(30)).await;
        outcomes
    });
    let result = match lifecycle::failure_summary(&outcomes) {
        Some(summary) => Err(Error::ActionsFailed { summary }),
        None if canceller.is_cancelled() => Err(Error::Interrupted),
        None => Ok(()),
    };
    let mut counts = Counts::default();
    for o in &outcomes {
        counts.add(o.outcome);
    }
    bus.emit(Event::RunFinished(RunFinished {
        at: events::now(),
        duration: started.elapsed(),
        counts,
        exit_code: result
            .as_ref()
            .map_or_else(Error::exit_code, |()| exit::SUCCESS),
    }));
    // The reports are written now (JUnit, Markdown); a report that cannot be written fails
    // the run even when every action passed.
    bus.finish()?;
    result
}

/// Watches for SIGINT, SIGTERM and SIGHUP during a run (a CI system's timeout sends
/// SIGTERM; a closed terminal SIGHUP). The first starts no further step and lets running ones
/// finish, so nothing is left half-created (`--destroy always` still destroys). The second
/// forwards SIGINT to the host commands' process groups (which a terminal's Ctrl-C does not
/// reach: each runs in a group of its own) and stops the steps in progress, which kills those
/// groups and the commands in the instances; each step records the interruption in its state
/// file, and the run ends normally: reports written, exit 130.
async fn watch_interrupts(canceller: lifecycle::Canceller, bus: EventBus) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot watch for SIGINT, SIGTERM and SIGHUP");
        return;
    };
    let mut next = async || -> &'static str {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
        }
    };
    let warn = |text: String| {
        bus.emit(Event::Warning(Warning {
            at: events::now(),
            instance: None,
            text,
        }));
    };
    let first = next().await;
    canceller.cancel();
    warn(format!(
        "-----> Interrupted ({first}): finishing the steps in progress; interrupt again to stop them"
    ));
    let second = next().await;
    warn(format!(
        "-----> Interrupted again ({second}): stopping the steps in progress and their commands"
    ));
    // Aborted first: a step whose command dies of the forwarded signal then ends as
    // interrupted, not as a command that failed.
    canceller.abort();
    crate::host::signal_children(rustix::process::Signal::INT);
    loop {
        let more = next().await;
        warn(format!(
            "-----> Interrupted ({more}): already stopping; the reports are written next"
        ));
    }
}

/// `login`: returns the shell's exit code.
pub(super) fn login(opts: &LoadOptions, args: LoginArgs) -> Result<i32> {
    let level = level_of(&args.log_level);
    init_tracing(level);
    let (project, found) = load_selected(
        opts,
        std::slice::from_ref(&args.instance),
        None,
        &args.log_level,
    )?;
    let [inst] = found.as_slice() else {
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        return Err(Error::AmbiguousInstance {
            pattern: args.instance,
            matches: names.join(", "),
        });
    };
    let state = StateFile::new(&project.kitchen_root, &inst.name).load()?;
    if state.last_action().is_none() {
        return Err(Error::NotCreated {
            instance: inst.name.clone(),
        });
    }
    let rt = runtime()?;
    let code = rt.block_on(async {
        let driver = crate::driver::for_instance(inst)?;
        // No reporter: login's only output is the terminal session.
        let ctx = crate::plugin::InstanceContext::new(
            std::sync::Arc::new(inst.clone()),
            &project.kitchen_root,
            &project.test_base_path,
            EventBus::new().instance(InstanceId::from(inst)),
        );
        let conn = driver.connection(&ctx, &state).await?;
        login_session(conn.as_ref()).await
    })?;
    Ok(i32::try_from(code).unwrap_or(exit::ACTIONS_FAILED))
}

/// Puts the local terminal in raw mode until dropped (when stdin is a terminal).
struct RawTerminal(Option<rustix::termios::Termios>);

impl RawTerminal {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal(None);
        }
        match rustix::termios::tcgetattr(&stdin) {
            Ok(original) => {
                let mut raw = original.clone();
                raw.make_raw();
                if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
                    .is_ok()
                {
                    RawTerminal(Some(original))
                } else {
                    RawTerminal(None)
                }
            }
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(original) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                original,
            );
        }
    }
}

fn window_size() -> (u16, u16) {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map(|w| (w.ws_col, w.ws_row))
        .unwrap_or((80, 24))
}

/// `login`'s session (also `plugin login`'s): a shell on this terminal, or the piped input
/// run as a script when stdin is not a terminal. Returns the shell's exit code.
pub(super) async fn login_session(conn: &dyn crate::transport::Connection) -> crate::Result<i64> {
    if std::io::stdin().is_terminal() {
        interactive_login(conn).await
    } else {
        piped_login(conn).await
    }
}

/// `login` with piped input (`echo uptime | kitchen-driver login web`): the input is a script
/// for the instance's shell, run without a terminal, as `ssh host < script` does. An
/// interactive shell would wait for the terminal's answers to its line-editing queries and eat
/// the piped lines. Output goes to stdout and stderr; returns the shell's exit code.
async fn piped_login(conn: &dyn crate::transport::Connection) -> crate::Result<i64> {
    use std::io::Read;
    struct Plain;
    impl crate::report::OutputSink for Plain {
        fn line(&self, stream: crate::report::OutputStream, line: &str) {
            match stream {
                crate::report::OutputStream::Stderr => eprintln!("{line}"),
                _ => println!("{line}"),
            }
        }
    }
    let mut script = String::new();
    std::io::stdin()
        .read_to_string(&mut script)
        .map_err(|e| crate::Error::io("reading", "standard input", e))?;
    let out = conn
        .exec(&crate::transport::ExecRequest::shell(script), &Plain)
        .await?;
    Ok(out.exit_code)
}

/// `login`: a shell under a pseudo-terminal in the instance, through the runtime's exec API,
/// wired to this terminal (raw mode, window resizes). Returns the shell's exit code.
async fn interactive_login(conn: &dyn crate::transport::Connection) -> Result<i64> {
    use std::io::{Read, Write};
    let (w, h) = window_size();
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
    let argv = [
        "sh".to_string(),
        "-c".to_string(),
        crate::transport::LOGIN_SHELL.to_string(),
    ];
    let mut session = conn
        .open_tty(&argv, &[("TERM".to_string(), term)], w, h)
        .await?;
    let _raw = RawTerminal::enter();
    // Keystrokes: a blocking reader thread (the process exits when the shell ends).
    let input = session.input.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || input.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    drop(session.input);
    // Window resizes.
    let resize = session.resize.clone();
    let winch = tokio::spawn(async move {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        {
            while sig.recv().await.is_some() {
                if resize.send(window_size()).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut stdout = std::io::stdout();
    while let Some(chunk) = session.output.recv().await {
        let _ = stdout.write_all(&chunk);
        let _ = stdout.flush();
    }
    winch.abort();
    session.exit.await.unwrap_or(Ok(-1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn concurrency_flag_takes_an_optional_number() {
        let cli = Cli::try_parse_from(["kitchen-driver", "test", "-c", "3", "default"]).unwrap();
        let Command::Test(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.common.concurrency, Some(3));
        assert_eq!(t.common.instances, ["default"]);
        assert_eq!(t.destroy, DestroyMode::Passing);
        let cli = Cli::try_parse_from(["kitchen-driver", "converge", "default", "-c"]).unwrap();
        let Command::Converge(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.concurrency, Some(0));
        let cli = Cli::try_parse_from(["kitchen-driver", "test", "--destroy", "always"]).unwrap();
        let Command::Test(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.destroy, DestroyMode::Always);
        assert!(Cli::try_parse_from(["kitchen-driver", "test", "--destroy", "sometimes"]).is_err());
        let cli =
            Cli::try_parse_from(["kitchen-driver", "exec", "default", "-c", "uname -a"]).unwrap();
        let Command::Exec(e) = cli.command else {
            panic!()
        };
        assert_eq!(e.command, "uname -a");
    }

    #[test]
    fn step_timeout_is_a_positive_number_of_seconds_a_duration_holds() {
        let cli =
            Cli::try_parse_from(["kitchen-driver", "converge", "--step-timeout", "90"]).unwrap();
        let Command::Converge(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.step_timeout, Some(std::time::Duration::from_secs(90)));
        for bad in ["0", "-5", "1e300", "inf", "NaN", "soon"] {
            let bad = format!("--step-timeout={bad}");
            let e = Cli::try_parse_from(["kitchen-driver", "test", bad.as_str()])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--step-timeout"), "{bad}: {e}");
        }
    }
}
