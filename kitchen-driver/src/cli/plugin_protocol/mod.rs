//! `kitchen-driver plugin ...`: the machine interface that test-kitchen plugins (the Ruby gem in
//! `kitchen-driver/ruby/`) call to create, destroy and reach instances through this crate's
//! drivers.
//!
//! One invocation is one command. The request is a JSON object on stdin (or `--request`); the
//! answer is JSON lines on stdout: `log` and `output` lines while the work runs, then exactly
//! one `result` or `error` line ([`Message`]). The same [`Driver`](crate::driver::Driver)s as
//! `kitchen-driver create` do the work, with the same container names and ownership labels, so
//! `kitchen-driver destroy` in the project finds what a plugin created. The protocol is
//! documented message by message in `kitchen-driver/PLUGIN-PROTOCOL.md`.

mod messages;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};

pub use messages::{
    ErrorCode, Message, Outcome, PROTOCOL_COMMANDS, PROTOCOL_DRIVERS, PROTOCOL_VERSION,
    ProtocolError, Request, Status, Stream, state_json,
};

use crate::events::{EventBus, InstanceId};
use crate::plugin::InstanceContext;
use crate::report::{Level, OutputSink, OutputStream, TextOptions, TextReporter};
use crate::transport::{Connection, ExecRequest};

/// `plugin COMMAND [--request JSON]`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// What to do.
    #[arg(value_enum)]
    pub command: PluginCommand,
    /// The request as an argument instead of on stdin (`login` needs stdin for the terminal).
    #[arg(long, value_name = "JSON")]
    pub request: Option<String>,
}

/// The subcommands of `kitchen-driver plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum PluginCommand {
    /// The handshake: protocol version, drivers and commands. Reads no request.
    Version,
    /// Create the instance; answers the new state.
    Create,
    /// Remove the instance; answers the new state.
    Destroy,
    /// Whether the instance answers.
    Status,
    /// Run `command` with `sh -c`, streaming its output; answers its exit code.
    Exec,
    /// Copy `locals` into the directory `remote` in the instance.
    Upload,
    /// Copy `remotes` from the instance into the host directory `local`.
    Download,
    /// An interactive shell on this terminal, or stdin run as a script when it is not a
    /// terminal (no JSON output; exits with the shell's code).
    Login,
}

impl PluginCommand {
    /// The name as typed (`exec`).
    pub fn name(self) -> &'static str {
        match self {
            PluginCommand::Version => "version",
            PluginCommand::Create => "create",
            PluginCommand::Destroy => "destroy",
            PluginCommand::Status => "status",
            PluginCommand::Exec => "exec",
            PluginCommand::Upload => "upload",
            PluginCommand::Download => "download",
            PluginCommand::Login => "login",
        }
    }
}

/// Where answer lines go: one JSON object per line, flushed at once, from any task.
#[derive(Clone)]
struct Lines(Arc<Mutex<Box<dyn Write + Send>>>);

impl Lines {
    fn emit(&self, m: &Message) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // serde_json cannot fail on these types (string keys, no non-finite floats).
        if let Ok(line) = serde_json::to_string(m) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

impl OutputSink for Lines {
    fn line(&self, stream: OutputStream, line: &str) {
        let stream = match stream {
            OutputStream::Stderr => Stream::Stderr,
            _ => Stream::Stdout,
        };
        self.emit(&Message::Output {
            stream,
            data: line.to_string(),
        });
    }
}

/// The driver's progress lines, as the [`TextReporter`] renders them, turned into `log` messages
/// (without the `[instance] ` prefix the reporter adds for terminals).
struct LogWriter {
    lines: Lines,
    prefix: String,
    buf: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        while let Some(pos) = self.buf.iter().position(|c| *c == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]);
            let message = text.strip_prefix(&self.prefix).unwrap_or(&text).to_string();
            self.lines.emit(&Message::Log { message });
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `kitchen-driver plugin ...` with this process's stdin and stdout; returns the exit
/// code: 0 after a `result` line, the [`ErrorCode::exit_code`] after an `error` line, the
/// shell's after `login`.
pub fn main(args: PluginArgs) -> i32 {
    let lines = Lines(Arc::new(Mutex::new(Box::new(std::io::stdout()))));
    match serve(&args, &lines) {
        Ok(Done::Result(outcome)) => {
            lines.emit(&Message::Result(outcome));
            0
        }
        Ok(Done::Login(code)) => code,
        Err(e) => {
            // `login`'s stdout is the user's terminal: no JSON there.
            if args.command == PluginCommand::Login {
                eprintln!("kitchen-driver: {}", e.message);
            } else {
                lines.emit(&e.message());
            }
            e.code.exit_code()
        }
    }
}

/// How a command ended well.
enum Done {
    /// With a `result` line to print.
    Result(Outcome),
    /// `login`: the shell ended with this exit code.
    Login(i32),
}

fn serve(args: &PluginArgs, lines: &Lines) -> Result<Done, ProtocolError> {
    if args.command == PluginCommand::Version {
        return Ok(Done::Result(version()));
    }
    let text = match &args.request {
        Some(t) => t.clone(),
        None => {
            let mut t = String::new();
            std::io::stdin().read_to_string(&mut t).map_err(|e| {
                ProtocolError::new(
                    ErrorCode::BadRequest,
                    format!("cannot read the request from stdin: {e}"),
                )
            })?;
            t
        }
    };
    let req = Request::parse(&text)?;
    req.check_fields(args.command.name())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ProtocolError::new(
                ErrorCode::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    rt.block_on(run(args.command, &req, lines))
}

async fn run(command: PluginCommand, req: &Request, lines: &Lines) -> Result<Done, ProtocolError> {
    let instance = req.instance_config();
    let driver = crate::driver::for_instance(&instance)?;
    let id = InstanceId::from(&instance);
    let bus = EventBus::new();
    bus.subscribe(TextReporter::plain(
        Box::new(LogWriter {
            lines: lines.clone(),
            prefix: format!("[{}] ", req.instance),
            buf: Vec::new(),
        }),
        TextOptions {
            level: Level::Info,
            ..TextOptions::default()
        },
    ));
    // No test_base_path: drivers do not read it (only provisioners and verifiers do).
    let ctx = InstanceContext::new(
        Arc::new(instance),
        &req.kitchen_root,
        req.kitchen_root.join("test/integration"),
        bus.instance(id),
    );
    let mut state = req.state();
    let conn = || async { driver.connection(&ctx, &req.state()).await };
    let outcome = match command {
        PluginCommand::Version => version(),
        PluginCommand::Create => {
            let r = driver.create(&ctx, &mut state).await;
            r.map_err(|e| with_state(e, &state))?;
            Outcome::Create {
                state: state_json(&state),
            }
        }
        PluginCommand::Destroy => {
            let r = driver.destroy(&ctx, &mut state).await;
            r.map_err(|e| with_state(e, &state))?;
            Outcome::Destroy {
                state: state_json(&state),
            }
        }
        PluginCommand::Status => Outcome::Status {
            status: status(driver.as_ref(), &ctx, req).await,
        },
        PluginCommand::Exec => {
            let command = req.command.as_deref().unwrap_or_default();
            let out = conn()
                .await?
                .exec(&ExecRequest::shell(command), lines)
                .await?;
            Outcome::Exec {
                exit_code: out.exit_code,
            }
        }
        PluginCommand::Upload => {
            let remote = req.remote.as_deref().unwrap_or_default();
            conn().await?.upload(&req.locals, remote).await?;
            Outcome::Upload {}
        }
        PluginCommand::Download => {
            let local = req.local.as_deref().unwrap_or(std::path::Path::new(""));
            conn().await?.download(&req.remotes, local).await?;
            Outcome::Download {}
        }
        PluginCommand::Login => {
            let code = super::actions::login_session(conn().await?.as_ref()).await?;
            return Ok(Done::Login(
                i32::try_from(code).unwrap_or(super::exit::ACTIONS_FAILED),
            ));
        }
    };
    Ok(Done::Result(outcome))
}

/// A driver error that carries the state as it stands, so the plugin stores what was created.
fn with_state(e: crate::Error, state: &crate::state::State) -> ProtocolError {
    let mut p = ProtocolError::from(e);
    p.state = Some(state_json(state));
    p
}

/// The handshake's answer.
fn version() -> Outcome {
    Outcome::Version {
        protocol: PROTOCOL_VERSION,
        version: crate::VERSION.to_string(),
        drivers: PROTOCOL_DRIVERS.iter().map(|s| s.to_string()).collect(),
        commands: PROTOCOL_COMMANDS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Asks the instance to run `true`: answers tell whether it is there and reachable.
async fn status(
    driver: &dyn crate::driver::Driver,
    ctx: &InstanceContext,
    req: &Request,
) -> Status {
    let state = req.state();
    let resource_id = state.get_str("container_name").map(str::to_string);
    let probe = async {
        let conn: Arc<dyn Connection> = driver.connection(ctx, &state).await?;
        conn.exec(&ExecRequest::new(["true"]), &crate::report::NullSink)
            .await
    };
    match probe.await {
        Ok(out) if out.success() => Status {
            live: Some(true),
            state: "running".into(),
            resource_id,
            message: "the instance answers commands".into(),
        },
        Ok(out) => Status {
            live: Some(false),
            state: "unreachable".into(),
            resource_id,
            message: format!("`true` exited {} in the instance", out.exit_code),
        },
        Err(crate::Error::NotCreated { .. }) => Status {
            live: None,
            state: "not_created".into(),
            resource_id,
            message: "the state records no instance".into(),
        },
        Err(e) => Status {
            live: Some(false),
            state: "unreachable".into(),
            resource_id,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_command_is_listed_by_version_under_its_clap_name() {
        for c in PluginCommand::value_variants() {
            let clap_name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(c.name(), clap_name);
            assert!(PROTOCOL_COMMANDS.contains(&c.name()), "{clap_name}");
        }
        assert_eq!(
            PROTOCOL_COMMANDS.len(),
            PluginCommand::value_variants().len()
        );
    }

    #[test]
    fn progress_lines_become_log_messages_without_the_instance_prefix() {
        let buf = Buf::default();
        let lines = Lines(Arc::new(Mutex::new(Box::new(buf.clone()))));
        let mut w = LogWriter {
            lines: lines.clone(),
            prefix: "[default-busybox] ".into(),
            buf: Vec::new(),
        };
        w.write_all(b"[default-busybox] Creating c1\nplain")
            .unwrap();
        w.write_all(b" line\n").unwrap();
        lines.line(OutputStream::Stderr, "oops");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            concat!(
                "{\"type\":\"log\",\"message\":\"Creating c1\"}\n",
                "{\"type\":\"log\",\"message\":\"plain line\"}\n",
                "{\"type\":\"output\",\"stream\":\"stderr\",\"data\":\"oops\"}\n"
            )
        );
    }
}
