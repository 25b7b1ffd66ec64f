//! The one error type of ecs-runner, and the exit codes the binary maps it to.

use std::path::PathBuf;

/// Exit code: every instance passed.
pub const EXIT_PASSED: i32 = 0;
/// Exit code: a usage or configuration error (bad flags, kitchen.yml, `ecs:` settings, an
/// unsupported plugin); nothing was started.
pub const EXIT_USAGE: i32 = 1;
/// Exit code: at least one instance failed its converge or verify (test-kitchen's code).
pub const EXIT_FAILED: i32 = 20;
/// Exit code: infrastructure only: a task never started, placement failed, an image could not
/// be pulled, the AWS API or the Docker engine failed. No instance failed its own tests.
pub const EXIT_INFRASTRUCTURE: i32 = 30;
/// Exit code: interrupted (Ctrl-C, SIGTERM); every task this run started was stopped.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything that can go wrong in ecs-runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// kitchen.yml could not be loaded (file, line and column in the message).
    #[error(transparent)]
    Config(#[from] kitchen_driver::config::ConfigError),
    /// A provisioner block is invalid as kitchen-driver reads it (the same message
    /// `kitchen-driver` gives for the same kitchen.yml).
    #[error(transparent)]
    Provisioner(Box<kitchen_driver::Error>),
    /// An `ecs:` setting is missing or wrong.
    #[error("instance {instance}: ecs settings: {message}")]
    Settings {
        /// The instance whose merged `ecs:` mapping is at fault.
        instance: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The instance uses something a task cannot run (checked before any task starts).
    #[error("instance {instance}: {message}")]
    Unsupported {
        /// The instance.
        instance: String,
        /// What is not supported and what to use instead.
        message: String,
    },
    /// A file of the bundle could not be read.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Docker engine refused or failed a call (`--local`).
    #[error("Docker: {what}: {source}")]
    Docker {
        /// The call.
        what: String,
        /// The cause.
        #[source]
        source: bollard::errors::Error,
    },
    /// An AWS API call failed (after the SDK's own retries).
    #[error("AWS {operation}: {message}")]
    Aws {
        /// The API operation (`RunTask`, `DescribeTasks`, ...).
        operation: &'static str,
        /// The service's message, or the SDK's.
        message: String,
    },
    /// A bundle image could not be built, pushed or found in the registry.
    #[error("bundle image {image}: {message}")]
    Image {
        /// The image reference.
        image: String,
        /// What failed and what to do.
        message: String,
    },
    /// No instance matched the arguments.
    #[error("no instances for regex `{0}`, try running `ecs-runner list`")]
    NoInstances(String),
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit code the binary uses for this error when it ends a command.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Docker { .. } | Error::Aws { .. } | Error::Image { .. } => EXIT_INFRASTRUCTURE,
            _ => EXIT_USAGE,
        }
    }

    pub(crate) fn settings(instance: &str, message: impl Into<String>) -> Self {
        Error::Settings {
            instance: instance.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(instance: &str, message: impl Into<String>) -> Self {
        Error::Unsupported {
            instance: instance.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn docker(what: impl Into<String>, source: bollard::errors::Error) -> Self {
        Error::Docker {
            what: what.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
