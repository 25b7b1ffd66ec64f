//! The crate's one error type. The process exit code of each error is decided in one table,
//! `cli/exit.rs` ([`Error::exit_code`]).

use std::fmt;
use std::path::PathBuf;

use crate::config::ConfigError;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while driving instances.
///
/// Each variant says what failed, where (instance, path, container) and, where there is one,
/// what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading kitchen.yml or selecting instances failed (the loader's located error).
    #[error(transparent)]
    Load(#[from] ConfigError),

    /// A plugin name (driver, provisioner, verifier) that this build does not implement.
    #[error(
        "{kind} plugin `{name}` is not supported by kitchen-driver (instance {instance}); supported {kind}s: {supported}"
    )]
    UnknownPlugin {
        /// `driver`, `provisioner`, `verifier` or `transport`.
        kind: &'static str,
        /// The name as written in kitchen.yml (`""` when missing).
        name: String,
        /// The instance whose configuration names it.
        instance: String,
        /// The supported names, comma-separated.
        supported: String,
    },

    /// A plugin block has a key of the wrong type or a bad value.
    #[error("invalid {kind} configuration for instance {instance}: {message}")]
    Config {
        /// `driver`, `provisioner`, `verifier` or `lifecycle`.
        kind: &'static str,
        /// The instance.
        instance: String,
        /// What is wrong, naming the key.
        message: String,
    },

    /// Reading or writing a file on the host failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, `creating directory` ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A state file exists but is not valid YAML of the expected shape (test-kitchen's
    /// `StateFileLoadError`, with its wording).
    #[error(
        "Error parsing {} ({source}); fix the file or delete it (the next action rewrites it)",
        path.display()
    )]
    StateFile {
        /// The state file.
        path: PathBuf,
        /// What is wrong, with file, line and column (boxed: it is large).
        #[source]
        source: Box<crate::config::ConfigError>,
    },

    /// Another process holds the instance's lock.
    #[error(
        "instance {instance} is in use by another kitchen-driver process (lock {} is held); wait for it to finish",
        path.display()
    )]
    Locked {
        /// The instance.
        instance: String,
        /// The lock file.
        path: PathBuf,
    },

    /// The Docker engine API returned an error.
    #[error("Docker: {action} failed for instance {instance}: {source}")]
    Docker {
        /// What was being done (`creating container`, `exec` ...).
        action: String,
        /// The instance.
        instance: String,
        /// The bollard error.
        #[source]
        source: bollard::errors::Error,
    },

    /// The Docker engine cannot be reached at all (or its TLS settings are unusable).
    #[error("cannot connect to the Docker engine at {endpoint}: {message}")]
    DockerConnect {
        /// The engine's address (`unix:///var/run/docker.sock`, `tcp://HOST:2376`).
        endpoint: String,
        /// What failed and what to do.
        message: String,
    },

    /// The image a platform asks for is not in the runtime's local image store.
    #[error(
        "image `{image}` (instance {instance}) is not in the local image store and no registry is reachable here: {hint}"
    )]
    MissingImage {
        /// The image reference.
        image: String,
        /// The instance.
        instance: String,
        /// How to get it (runtime-specific).
        hint: String,
    },

    /// The LXD API returned an error.
    #[error("LXD: {action} failed for instance {instance}: {source}")]
    Lxd {
        /// What was being done.
        action: String,
        /// The instance.
        instance: String,
        /// The lxd-client error (boxed: it is large).
        #[source]
        source: Box<lxd_client::Error>,
    },

    /// The container runtime refused to start a container.
    #[error("instance {instance}: {message}")]
    Runtime {
        /// The instance.
        instance: String,
        /// What happened and what to do.
        message: String,
    },

    /// A command inside the instance or on the host exited non-zero.
    #[error("instance {instance}: {what} exited with code {exit_code}: {command}")]
    CommandFailed {
        /// The instance.
        instance: String,
        /// `converge`, `verifier command`, `pre_create hook` ...
        what: String,
        /// The command line.
        command: String,
        /// The exit code (-1 when killed by a signal or unknown).
        exit_code: i64,
    },

    /// The verifier ran and found failures.
    #[error("instance {instance}: verify failed: {message}")]
    VerifyFailed {
        /// The instance.
        instance: String,
        /// What failed.
        message: String,
    },

    /// A download from the instance held something that would land outside its target
    /// directory (an absolute or `..` name, a link out of it), and was refused.
    #[error(
        "instance {instance}: refusing to download {path}: {reason}; nothing outside the download directory was written"
    )]
    UnsafeDownload {
        /// The instance.
        instance: String,
        /// The path in the instance, or the archive entry.
        path: String,
        /// What was wrong.
        reason: String,
    },

    /// An action needs an instance that has not been created.
    #[error(
        "instance {instance} has not yet been created; run `kitchen-driver create {instance}` first"
    )]
    NotCreated {
        /// The instance.
        instance: String,
    },

    /// The run was cancelled before this instance's next step (`--fail-fast` after another
    /// instance failed, or Ctrl-C).
    #[error("instance {instance}: {action} not started: {reason}")]
    Cancelled {
        /// The instance.
        instance: String,
        /// The action that did not run.
        action: String,
        /// Who cancelled.
        reason: CancelReason,
    },

    /// A step ran past its time limit (`--step-timeout`, or `step_timeout` in the driver
    /// block); its host commands and the command in the instance were killed.
    #[error(
        "instance {instance}: {action} did not finish within its step timeout of {}s and was stopped (its commands were killed); raise `--step-timeout` or the driver's `step_timeout` if the step is just slow",
        limit.as_secs_f64()
    )]
    StepTimedOut {
        /// The instance.
        instance: String,
        /// The step that ran too long.
        action: String,
        /// The limit it had.
        limit: std::time::Duration,
    },

    /// A second interrupt stopped a step in the middle; its host commands were killed.
    #[error(
        "instance {instance}: {action} stopped by a second interrupt (its host commands were killed)"
    )]
    Aborted {
        /// The instance.
        instance: String,
        /// The step that was stopped.
        action: String,
    },

    /// Actions failed (test-kitchen's `ActionFailed` at the end of a run): `N actions failed.`
    /// and one line per failure.
    #[error("{summary}")]
    ActionsFailed {
        /// `N actions failed.` and a `>>>>>>     <message>` line per failed instance.
        summary: String,
    },

    /// An interrupt (Ctrl-C, SIGTERM or SIGHUP) stopped the run before every action ran (and
    /// none failed).
    #[error("Interrupted before every action ran")]
    Interrupted,

    /// A pattern that must name exactly one instance (`login`) matched several.
    #[error("argument `{pattern}` returned multiple results: {matches}; name exactly one instance")]
    AmbiguousInstance {
        /// The pattern as given.
        pattern: String,
        /// The matching instance names, comma-separated.
        matches: String,
    },

    /// The command could not set itself up on the host (current directory, async runtime).
    #[error("cannot {action}: {source}")]
    Startup {
        /// What was being done (`start the async runtime` ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A report was asked for where it cannot be written (checked before the run starts).
    #[error(
        "cannot write the report {}: {source}; choose a writable path (missing directories are created)",
        path.display()
    )]
    ReportPath {
        /// The report file or the directory that cannot be created.
        path: PathBuf,
        /// Why it cannot be written.
        #[source]
        source: std::io::Error,
    },

    /// Writing a report (the command's output, the JUnit file) failed.
    #[error("cannot write {what}: {source}")]
    Report {
        /// What was being written (`output`, `the JUnit report <path>`).
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A provisioner ran and failed (for `ansible_playbook`: the failing task and its message).
    #[error("instance {instance}: converge failed: {message}")]
    ProvisionFailed {
        /// The instance.
        instance: String,
        /// What failed, naming the task and host where known.
        message: String,
    },

    /// A tool a plugin needs is missing on the host or in the instance.
    #[error("instance {instance}: {tool} not found {location}; {hint}")]
    MissingTool {
        /// The instance.
        instance: String,
        /// The program (`ansible-playbook`, `bats`).
        tool: String,
        /// `on the host` or `in the instance`.
        location: &'static str,
        /// How to get it.
        hint: String,
    },
}

impl Error {
    /// The Ruby class test-kitchen would record for this failure (`e.class.name`): the state
    /// file's `last_error` and `list`'s Last Error column. An interrupt is Ruby's `Interrupt`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::Load(_) => "Kitchen::UserError",
            Error::UnknownPlugin { .. } => "Kitchen::ClientError",
            Error::Config { .. } => "Kitchen::UserError",
            Error::Io { .. } => "IOError",
            Error::StateFile { .. } => "Kitchen::StateFileLoadError",
            Error::Locked { .. } => "Kitchen::UserError",
            Error::Docker { .. }
            | Error::DockerConnect { .. }
            | Error::Runtime { .. }
            | Error::Lxd { .. } => "Kitchen::ActionFailed",
            Error::MissingImage { .. } => "Kitchen::ActionFailed",
            Error::CommandFailed { .. } | Error::VerifyFailed { .. } => "Kitchen::ActionFailed",
            Error::UnsafeDownload { .. } => "Kitchen::ActionFailed",
            Error::NotCreated { .. } => "Kitchen::UserError",
            Error::Cancelled { .. } | Error::Aborted { .. } | Error::Interrupted => "Interrupt",
            Error::StepTimedOut { .. } => "Kitchen::ActionFailed",
            Error::ActionsFailed { .. } => "Kitchen::ActionFailed",
            Error::AmbiguousInstance { .. } => "Kitchen::UserError",
            Error::Startup { .. } | Error::Report { .. } => "IOError",
            Error::ReportPath { .. } => "Kitchen::UserError",
            Error::ProvisionFailed { .. } => "Kitchen::ActionFailed",
            Error::MissingTool { .. } => "Kitchen::UserError",
        }
    }

    /// [`Error::Config`]: `message` names what is wrong in `instance`'s `kind` block.
    pub(crate) fn config(
        kind: &'static str,
        instance: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            kind,
            instance: instance.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Why a run stopped starting steps (`interrupted` or `fail_fast` in the run events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelReason {
    /// An interrupt: Ctrl-C (SIGINT), SIGTERM or SIGHUP.
    Interrupted,
    /// `--fail-fast`, after another instance failed.
    FailFast,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Interrupted => "cancelled by an interrupt (Ctrl-C, SIGTERM or SIGHUP)",
            CancelReason::FailFast => "cancelled after another instance failed (--fail-fast)",
        })
    }
}
