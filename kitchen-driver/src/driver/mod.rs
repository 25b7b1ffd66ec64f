//! Drivers (the runtime an instance lives in) and connections (how to run commands in it).
//!
//! A [`Driver`] creates and destroys an instance and hands out a [`Connection`]: the runtime's
//! own exec and file APIs play test-kitchen's transport (no SSH). Provisioners and verifiers
//! only ever see a `Connection`, so they work on every runtime.
//!
//! Drivers are found by name with [`for_instance`]: `lxd` (over `lxd-client`) and `docker`
//! (over bollard).

pub mod docker;
pub mod lxd;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{InstanceConfig, PluginConfig};
use crate::error::{Error, Result};
use crate::report::{InstanceOutput, OutputSink};
use crate::state::State;

/// The driver names this build knows.
pub const SUPPORTED_DRIVERS: &[&str] = &["lxd", "docker"];

/// The readiness probe both drivers run until it prints `running` or `degraded`: where PID 1
/// is systemd (judged by `/proc/1/exe`, since its `comm` is still `init` for the first
/// moments of boot), `systemctl is-system-running`; elsewhere just `running`.
pub const READINESS_PROBE: &str = "case \"$(readlink /proc/1/exe 2>/dev/null)\" in *systemd*) systemctl is-system-running 2>/dev/null || true ;; *) echo running ;; esac";

/// What a driver needs to know about the instance it works on.
#[derive(Debug, Clone)]
pub struct DriverContext {
    /// The instance's merged configuration.
    pub instance: Arc<InstanceConfig>,
    /// The project directory (`kitchen_root`).
    pub kitchen_root: PathBuf,
    /// Where progress and command output go.
    pub output: InstanceOutput,
}

/// A container runtime: creates and destroys instances and connects to them.
///
/// Implementations keep what they create in the [`State`] (test-kitchen's contract: the state is
/// the only memory between invocations) and must never orphan a resource: when `create` fails
/// midway, whatever was created is either removed or recorded in `state` so `destroy` finds it.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The plugin name (`docker`, `lxd`).
    fn name(&self) -> &'static str;

    /// Creates and starts the instance, waits until it answers exec, and records what it
    /// created in `state` (`container_id`, `hostname`, ...).
    ///
    /// # Errors
    /// Runtime errors, with the instance named and, for the usual causes (missing image,
    /// privileged refused), what to do.
    async fn create(&self, ctx: &DriverContext, state: &mut State) -> Result<()>;

    /// Removes everything the instance owns; fine when nothing exists.
    ///
    /// # Errors
    /// Runtime errors other than "not found".
    async fn destroy(&self, ctx: &DriverContext, state: &mut State) -> Result<()>;

    /// A connection to a created instance.
    ///
    /// # Errors
    /// [`Error::NotCreated`] when `state` records no instance.
    async fn connection(&self, ctx: &DriverContext, state: &State) -> Result<Arc<dyn Connection>>;
}

/// A command to run inside an instance.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The argument vector (no shell unless you put one there; see [`ExecRequest::shell`]).
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this user instead of the container's default.
    pub user: Option<String>,
    /// Working directory inside the instance.
    pub workdir: Option<String>,
}

impl ExecRequest {
    /// Runs `argv` as given.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Runs `script` with `sh -c` (test-kitchen's transports run command strings in a shell).
    pub fn shell(script: impl Into<String>) -> Self {
        Self::new(["sh".to_string(), "-c".to_string(), script.into()])
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command as one line, for logs and error messages.
    pub fn display(&self) -> String {
        match self.argv.as_slice() {
            [sh, c, script] if sh == "sh" && c == "-c" => script.trim().to_string(),
            argv => argv.join(" "),
        }
    }
}

/// What a finished command left.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// The exit code (`-1` when the runtime did not report one).
    pub exit_code: i64,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl ExecOutput {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// The shell `login` opens: bash when the image has it, else sh.
pub const LOGIN_SHELL: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";

/// How to log in interactively: a program and its arguments to hand the terminal to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoginCommand {
    /// The program (`docker`, `lxc`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment to set for it (such as `DOCKER_HOST`).
    pub env: Vec<(String, String)>,
}

/// An interactive program running under a pseudo-terminal in an instance (`login`), driven
/// through channels: a task inside the driver moves bytes between them and the runtime.
#[derive(Debug)]
#[non_exhaustive]
pub struct TtySession {
    /// Keystrokes for the program (send raw bytes; dropping it sends end-of-file).
    pub input: tokio::sync::mpsc::Sender<Vec<u8>>,
    /// The terminal's output, chunk by chunk; closed when the program ends.
    pub output: tokio::sync::mpsc::Receiver<Vec<u8>>,
    /// New window sizes (columns, rows).
    pub resize: tokio::sync::mpsc::Sender<(u16, u16)>,
    /// The program's exit code, once it ended.
    pub exit: tokio::sync::oneshot::Receiver<Result<i64>>,
}

/// The channel ends a driver's session task works with (see [`TtySession`]).
#[derive(Debug)]
pub(crate) struct TtyEnds {
    pub(crate) input: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pub(crate) output: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub(crate) resize: tokio::sync::mpsc::Receiver<(u16, u16)>,
    pub(crate) exit: tokio::sync::oneshot::Sender<Result<i64>>,
}

impl TtySession {
    /// A session and the ends its driver task serves.
    pub(crate) fn channels() -> (TtySession, TtyEnds) {
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(64);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
        let (rz_tx, rz_rx) = tokio::sync::mpsc::channel(8);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        (
            TtySession {
                input: in_tx,
                output: out_rx,
                resize: rz_tx,
                exit: exit_rx,
            },
            TtyEnds {
                input: in_rx,
                output: out_tx,
                resize: rz_rx,
                exit: exit_tx,
            },
        )
    }
}

/// How a connection reaches its instance, for tools on the host that connect by themselves
/// (Ansible's `community.docker.docker` or `community.general.lxd` connection plugins).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// A Docker container.
    Docker {
        /// Container id.
        container_id: String,
        /// Container name.
        container_name: String,
        /// `DOCKER_HOST` as the driver used it, when set.
        docker_host: Option<String>,
    },
    /// An LXD instance.
    Lxd {
        /// Instance name.
        name: String,
        /// LXD project.
        project: String,
    },
}

/// A live link to a created instance: test-kitchen's transport connection, over the runtime's
/// own APIs.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Runs a command, streaming each output line to `sink` as it comes, and returns its exit
    /// code and captured output. A non-zero exit is not an error here; see
    /// [`Connection::execute`].
    ///
    /// # Errors
    /// Runtime errors (the command could not be started or followed).
    async fn exec(&self, req: &ExecRequest, sink: &dyn OutputSink) -> Result<ExecOutput>;

    /// Extracts a tar archive into `remote_dir`, which must exist.
    ///
    /// # Errors
    /// Runtime errors.
    async fn upload_tar(&self, tar: Vec<u8>, remote_dir: &str) -> Result<()>;

    /// Reads `remote` (a file or directory) as a tar archive whose top entry is its basename.
    ///
    /// # Errors
    /// Runtime errors, including a missing path.
    async fn download_tar(&self, remote: &str) -> Result<Vec<u8>>;

    /// Starts `argv` under a pseudo-terminal of `width` x `height` (for `login`), through the
    /// runtime's API.
    ///
    /// # Errors
    /// Runtime errors when the program cannot be started.
    async fn open_tty(
        &self,
        argv: &[String],
        env: &[(String, String)],
        width: u16,
        height: u16,
    ) -> Result<TtySession>;

    /// The runtime's own CLI command that opens the same shell (`docker exec -it ...`,
    /// `lxc exec ...`), for users who want to run it themselves.
    fn login_command(&self) -> LoginCommand;

    /// How host-side tools can reach this instance.
    fn target(&self) -> Target;

    /// The instance's name, for messages.
    fn instance(&self) -> &str;

    /// Runs `script` with `sh -c` and fails when it exits non-zero (test-kitchen's
    /// `connection.execute`, which raises `TransportFailed`).
    ///
    /// # Errors
    /// [`Error::CommandFailed`] with the exit code, or runtime errors.
    async fn execute(&self, script: &str, what: &str, sink: &dyn OutputSink) -> Result<ExecOutput> {
        let req = ExecRequest::shell(script);
        let out = self.exec(&req, sink).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::CommandFailed {
                instance: self.instance().to_string(),
                what: what.to_string(),
                command: req.display(),
                exit_code: out.exit_code,
            })
        }
    }

    /// Copies local files and directories into the directory `remote` (created if missing),
    /// each under its own basename, as test-kitchen's `upload(locals, remote)` does.
    ///
    /// # Errors
    /// [`Error::Io`] when a local path cannot be read, runtime errors otherwise.
    async fn upload(&self, locals: &[PathBuf], remote: &str) -> Result<()> {
        let mut builder = TarBuilder::new();
        for local in locals {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".to_string());
            builder.add_path(local, &name)?;
        }
        let tar = builder.finish()?;
        self.execute(
            &format!("mkdir -p {}", shell_quote(remote)),
            "creating upload directory",
            &crate::report::NullSink,
        )
        .await?;
        self.upload_tar(tar, remote).await
    }

    /// Copies each remote path (file or directory) into the local directory `local`.
    ///
    /// # Errors
    /// Runtime errors, or [`Error::Io`] when unpacking fails.
    async fn download(&self, remotes: &[String], local: &Path) -> Result<()> {
        std::fs::create_dir_all(local).map_err(|e| Error::io("creating directory", local, e))?;
        for remote in remotes {
            let tar = self.download_tar(remote).await?;
            tar::Archive::new(std::io::Cursor::new(tar))
                .unpack(local)
                .map_err(|e| Error::io("unpacking download into", local, e))?;
        }
        Ok(())
    }
}

/// Builds an in-memory tar archive from host files, directories and generated content.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl std::fmt::Debug for TarBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBuilder").finish_non_exhaustive()
    }
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(true);
        builder.mode(tar::HeaderMode::Deterministic);
        Self { builder }
    }

    /// Adds a file or a directory (recursively) under `name`.
    ///
    /// # Errors
    /// [`Error::Io`] when the path cannot be read.
    pub fn add_path(&mut self, local: &Path, name: &str) -> Result<()> {
        let meta = std::fs::metadata(local).map_err(|e| Error::io("reading", local, e))?;
        let r = if meta.is_dir() {
            self.builder.append_dir_all(name, local)
        } else {
            self.builder.append_path_with_name(local, name)
        };
        r.map_err(|e| Error::io("archiving", local, e))
    }

    /// Adds a file with the given content and mode.
    ///
    /// # Errors
    /// [`Error::Io`] on an invalid name.
    pub fn add_bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, name, data)
            .map_err(|e| Error::io("archiving", name, e))
    }

    /// The finished archive.
    ///
    /// # Errors
    /// [`Error::Io`] if the archive cannot be completed.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finishing archive", "<memory>", e))
    }
}

/// Quotes a string for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The driver named by the instance's `driver.name`.
///
/// Resolved only when an action runs, so `list` and `diagnose` work with plugins this build does
/// not implement.
///
/// # Errors
/// [`Error::UnknownPlugin`] naming the plugin and listing the supported ones; [`Error::Config`]
/// for invalid keys.
pub fn for_instance(instance: &InstanceConfig) -> Result<Box<dyn Driver>> {
    let block: &PluginConfig = &instance.driver;
    // `docker_api`/`lxd_api` are the test-kitchen plugins (kitchen-driver/ruby) over these
    // drivers: the same kitchen.yml works with both tools.
    match InstanceConfig::plugin_name(block) {
        "docker" | "docker_api" => Ok(Box::new(docker::DockerDriver::from_config(
            &instance.name,
            block,
        )?)),
        "lxd" | "lxd_api" => Ok(Box::new(lxd::LxdDriver::from_config(
            &instance.name,
            block,
        )?)),
        other => Err(Error::UnknownPlugin {
            kind: "driver",
            name: other.to_string(),
            instance: instance.name.clone(),
            supported: SUPPORTED_DRIVERS.join(", "),
        }),
    }
}

/// Deserializes a plugin block into a typed configuration, naming the failing key.
pub(crate) fn parse_block<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    instance: &str,
    block: &PluginConfig,
) -> Result<T> {
    let value = serde_json::Value::Object(block.clone());
    serde_path_to_error::deserialize(value)
        .map_err(|e| Error::config(kind, instance, format!("key `{}`: {}", e.path(), e.inner())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/tmp/kitchen"), "/tmp/kitchen");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn tar_builder_archives_files_dirs_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.txt"), "A").unwrap();
        let mut b = TarBuilder::new();
        b.add_path(&dir.path().join("data"), "data").unwrap();
        b.add_bytes("run.sh", b"echo hi\n", 0o755).unwrap();
        let tar = b.finish().unwrap();
        let mut ar = tar::Archive::new(std::io::Cursor::new(tar));
        let mut names: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        names.sort();
        assert!(names.iter().any(|(n, _)| n == "data/a.txt"), "{names:?}");
        assert!(names.contains(&("run.sh".into(), 0o755)), "{names:?}");
    }

    #[test]
    fn display_of_shell_requests_is_the_script() {
        assert_eq!(ExecRequest::shell(" echo hi ").display(), "echo hi");
        assert_eq!(ExecRequest::new(["ls", "-l"]).display(), "ls -l");
    }
}
