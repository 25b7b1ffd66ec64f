//! Commands on the host: lifecycle hooks (`local:`), the shell verifier (without
//! `remote_exec`), and `ansible-playbook` / `ansible-galaxy`. Provisioning itself never runs
//! here: these are the tools test-kitchen also runs on the workstation.
//!
//! One rule for every host command: it sees the runner's host environment
//! ([`Runner::with_env`](crate::lifecycle::Runner::with_env); the process environment unless
//! changed), then its own variables (a later one of the same name wins), and nothing else.
//! This is test-kitchen's rule for hooks and the shell verifier (they inherit the
//! environment); `ansible-playbook` adds its explicit list (`ANSIBLE_*`, `env_vars`) the same
//! way. Stdin is `/dev/null`; stdout and stderr stream line by line to the instance's output.
//!
//! Each host command runs in a process group of its own, so a Ctrl-C typed at the terminal
//! (which the terminal sends to kitchen-driver's foreground group) does not reach it: the
//! first interrupt lets running steps finish. [`signal_children`] forwards a signal to every
//! running command's group (the second interrupt does). A command whose future is dropped
//! (a step timeout, an abort) has its whole group killed. A command that exits while a
//! process it started in the background still holds its stdout is not waited for beyond
//! [`OUTPUT_GRACE`].
//!
//! ```no_run
//! use kitchen_driver::host::HostCommand;
//! use kitchen_driver::report::NullSink;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let host_env: Vec<(String, String)> = std::env::vars().collect();
//! let code = HostCommand::shell("echo $GREETING", "/tmp")
//!     .envs(host_env)
//!     .env("GREETING", "hello")
//!     .run(&NullSink)
//!     .await?;
//! assert_eq!(code, 0);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::report::{OutputSink, OutputStream};

/// How long output is still read after a command exited, for the last lines of processes it
/// started in the background; after that their pipes are left unread (docker's exec waits
/// about as long for output after its process ended).
pub const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// The process groups of the host commands running now (each command leads its own group).
static RUNNING_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn running_groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    // A panic while holding this lock leaves the set itself intact.
    RUNNING_GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends `signal` to the process group of every host command running now, and returns how
/// many groups it reached. The second interrupt forwards SIGINT this way, then SIGKILL to what
/// is left.
pub fn signal_children(signal: Signal) -> usize {
    let groups: Vec<i32> = running_groups().iter().copied().collect();
    groups
        .into_iter()
        .filter_map(Pid::from_raw)
        .filter(|pid| rustix::process::kill_process_group(*pid, signal).is_ok())
        .count()
}

/// The number of host commands running now.
pub fn running_children() -> usize {
    running_groups().len()
}

/// Registers a command's process group while it runs; when dropped before the command was
/// reaped (its future dropped by a timeout or an abort), kills the whole group.
struct GroupGuard {
    pgid: Option<Pid>,
    reaped: bool,
}

impl GroupGuard {
    fn new(pid: Option<u32>) -> Self {
        let pgid = pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw);
        if let Some(p) = pgid {
            running_groups().insert(p.as_raw_nonzero().get());
        }
        Self {
            pgid,
            reaped: false,
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(p) = self.pgid {
            running_groups().remove(&p.as_raw_nonzero().get());
            if !self.reaped {
                // Until the leader is reaped its pid cannot be reused, so this reaches only
                // the command's own group.
                let _ = rustix::process::kill_process_group(p, Signal::KILL);
            }
        }
    }
}

/// A program to run on the host, with its arguments, working directory and environment.
#[derive(Debug, Clone)]
pub struct HostCommand {
    program: OsString,
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

impl HostCommand {
    /// `program` (found on the `PATH` of the environment given, when not a path) in `cwd`,
    /// with no arguments and an empty environment.
    pub fn new(program: impl Into<OsString>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
        }
    }

    /// `sh -c script` in `cwd`.
    pub fn shell(script: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        Self::new("sh", cwd).args(["-c".to_string(), script.into()])
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds variables (the host environment first, then the command's own).
    #[must_use]
    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// Adds one variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The program, for messages.
    pub fn program(&self) -> &Path {
        Path::new(&self.program)
    }

    /// Runs the command to its end, streaming its lines to `sink`, and returns its exit code
    /// (-1 when killed by a signal). The command leads a process group of its own; dropping
    /// the future kills that group.
    ///
    /// # Errors
    /// The spawn error (kind `NotFound` when the program does not exist), or an error
    /// waiting for it.
    pub async fn run(&self, sink: &dyn OutputSink) -> std::io::Result<i64> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let mut group = GroupGuard::new(child.id());
        let pump = |stream, pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| async move {
            if let Some(pipe) = pipe {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    sink.line(stream, &l);
                }
            }
        };
        let stdout = child.stdout.take().map(|s| Box::new(s) as _);
        let stderr = child.stderr.take().map(|s| Box::new(s) as _);
        let pumps = async {
            tokio::join!(
                pump(OutputStream::Stdout, stdout),
                pump(OutputStream::Stderr, stderr)
            )
        };
        tokio::pin!(pumps);
        let mut output_closed = false;
        let status = tokio::select! {
            status = child.wait() => status,
            _ = &mut pumps => {
                output_closed = true;
                child.wait().await
            }
        };
        group.reaped = status.is_ok();
        if !output_closed {
            // The command exited: read what its output still holds, but stop waiting within
            // the grace period if a background process it started keeps the pipes open.
            let _ = tokio::time::timeout(OUTPUT_GRACE, &mut pumps).await;
        }
        Ok(status?.code().map(i64::from).unwrap_or(-1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NullSink;

    struct Collect(std::sync::Mutex<Vec<String>>);
    impl OutputSink for Collect {
        fn line(&self, _s: OutputStream, l: &str) {
            self.0.lock().unwrap().push(l.to_string());
        }
    }

    #[tokio::test]
    async fn streams_lines_and_reports_the_exit_code() {
        let c = Collect(Default::default());
        let dir = tempfile::tempdir().unwrap();
        let code = HostCommand::shell("echo \"$X in $(pwd)\"; echo err >&2; exit 3", dir.path())
            .envs([("PATH".to_string(), "/usr/bin:/bin".to_string())])
            .env("X", "x")
            .run(&c)
            .await
            .unwrap();
        assert_eq!(code, 3);
        let lines = c.0.lock().unwrap().clone();
        assert!(lines.iter().any(|l| l.starts_with("x in /")), "{lines:?}");
        assert!(lines.contains(&"err".to_string()), "{lines:?}");
        let ok = HostCommand::shell("true", dir.path()).run(&NullSink).await;
        assert_eq!(ok.unwrap(), 0);
    }

    #[tokio::test]
    async fn sees_exactly_the_environment_given_later_values_winning() {
        let c = Collect(Default::default());
        let code = HostCommand::new("/usr/bin/env", "/")
            .envs([
                ("A".to_string(), "host".to_string()),
                ("B".into(), "b".into()),
            ])
            .env("A", "own")
            .run(&c)
            .await
            .unwrap();
        assert_eq!(code, 0);
        let mut lines = c.0.lock().unwrap().clone();
        lines.sort();
        assert_eq!(lines, ["A=own", "B=b"]);
    }

    fn host_processes_running(cmdline: &str) -> usize {
        let want = cmdline.replace(' ', "\0") + "\0";
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| *c == want.as_bytes())
            .count()
    }

    #[tokio::test]
    async fn each_command_leads_a_process_group_of_its_own() {
        let c = Collect(Default::default());
        // Field 5 of /proc/PID/stat is the process group.
        let code = HostCommand::shell("echo $$; cut -d' ' -f5 /proc/$$/stat", "/")
            .envs([("PATH".to_string(), "/usr/bin:/bin".to_string())])
            .run(&c)
            .await
            .unwrap();
        assert_eq!(code, 0);
        let lines = c.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0], lines[1],
            "pid and process group differ: {lines:?}"
        );
        let own = rustix::process::getpgrp()
            .as_raw_nonzero()
            .get()
            .to_string();
        assert_ne!(lines[1], own, "the command shares our process group");
        assert_eq!(running_children(), 0);
    }

    #[tokio::test]
    async fn a_background_process_holding_stdout_does_not_hold_the_command() {
        let c = Collect(Default::default());
        let code = HostCommand::shell("sleep 3 & echo started", "/")
            .envs([("PATH".to_string(), "/usr/bin:/bin".to_string())])
            .run(&c)
            .await
            .unwrap();
        assert_eq!(code, 0);
        assert_eq!(c.0.lock().unwrap().clone(), ["started"]);
    }

    #[tokio::test]
    async fn a_dropped_command_has_its_whole_group_killed() {
        let run = HostCommand::shell("sleep 6211 & sleep 6212", "/")
            .envs([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
        let sink = Collect(Default::default());
        let mut fut = Box::pin(run.run(&sink));
        // Poll until both sleeps run, then drop the future.
        let started = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                tokio::select! {
                    _ = &mut fut => panic!("the command ended by itself"),
                    () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
                if host_processes_running("sleep 6211") == 1
                    && host_processes_running("sleep 6212") == 1
                {
                    break;
                }
            }
        })
        .await;
        assert!(started.is_ok(), "the sleeps never started");
        assert_eq!(running_children(), 1);
        drop(fut);
        assert_eq!(running_children(), 0);
        // SIGKILL was sent to the group; wait for the kernel to finish both processes.
        for _ in 0..500 {
            if host_processes_running("sleep 6211") + host_processes_running("sleep 6212") == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("a process of the dropped command survived");
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let e = HostCommand::new("/nonexistent/kd-tool", "/")
            .run(&NullSink)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
