//! What provisioners and verifiers receive: the [`PluginContext`] of one instance action.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::InstanceConfig;
use crate::error::{Error, Result};
use crate::report::{InstanceOutput, OutputSink, OutputStream};
use crate::state::State;
use crate::transport::Connection;

/// Everything a provisioner or verifier may use for one action on one instance.
#[derive(Clone)]
#[non_exhaustive]
pub struct PluginContext<'a> {
    /// The instance's merged configuration (`provisioner`, `verifier` blocks and the rest).
    pub instance: &'a InstanceConfig,
    /// The project directory.
    pub kitchen_root: &'a Path,
    /// `<kitchen_root>/test/integration` unless overridden.
    pub test_base_path: &'a Path,
    /// The instance's state (read-only here: drivers own it).
    pub state: &'a State,
    /// The connection to the created instance.
    pub connection: Arc<dyn Connection>,
    /// Live output and the instance's log.
    pub output: &'a InstanceOutput,
    /// The host environment plugins see (the process environment unless the
    /// [`Runner`](crate::lifecycle::Runner) was given another): the shell provisioner exports
    /// its `TKENV_*` and `CI` variables into the instance.
    pub host_env: &'a [(String, String)],
}

impl std::fmt::Debug for PluginContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext")
            .field("instance", &self.instance.name)
            .field("kitchen_root", &self.kitchen_root)
            .finish_non_exhaustive()
    }
}

impl<'a> PluginContext<'a> {
    /// Builds a context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        instance: &'a InstanceConfig,
        kitchen_root: &'a Path,
        test_base_path: &'a Path,
        state: &'a State,
        connection: Arc<dyn Connection>,
        output: &'a InstanceOutput,
        host_env: &'a [(String, String)],
    ) -> Self {
        Self {
            instance,
            kitchen_root,
            test_base_path,
            state,
            connection,
            output,
            host_env,
        }
    }

    /// test-kitchen's `calculate_path`: the first of `<tbp>/<suite>/<name>`, `<tbp>/<name>`,
    /// `<kitchen_root>/<name>` that exists (as a file when `file` is true, else a directory).
    pub fn calculate_path(&self, name: &str, file: bool) -> Option<PathBuf> {
        calculate_path(
            self.test_base_path,
            &self.instance.suite,
            self.kitchen_root,
            name,
            file,
        )
    }

    /// A path from the configuration: absolute as written, else relative to `kitchen_root`
    /// (test-kitchen's `expand_path_for`).
    pub fn expand_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.kitchen_root.join(p)
        }
    }
}

/// Runs `command` with `sh -c` on the host in `cwd` (hooks, the shell verifier, and tools
/// such as `ansible-playbook` that run on the host), streaming its lines to `sink`; returns the
/// exit code (-1 when killed by a signal).
///
/// # Errors
/// [`Error::Io`] when `sh` cannot be started.
pub async fn run_local(
    command: &str,
    cwd: &std::path::Path,
    env: &[(String, String)],
    sink: &dyn OutputSink,
) -> Result<i64> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io("starting sh for", cwd, e))?;
    stream_child(child, sink)
        .await
        .map_err(|e| Error::io("waiting for command in", cwd, e))
}

/// Streams a started host process's piped stdout and stderr to `sink` line by line while it
/// runs, and returns its exit code (-1 when killed by a signal). Shared by every host command
/// the plugins run ([`run_local`], `ansible-playbook`).
pub(crate) async fn stream_child(
    mut child: tokio::process::Child,
    sink: &dyn OutputSink,
) -> std::io::Result<i64> {
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
    let (_, _, status) = tokio::join!(
        pump(OutputStream::Stdout, stdout),
        pump(OutputStream::Stderr, stderr),
        child.wait()
    );
    Ok(status?.code().map(i64::from).unwrap_or(-1))
}

/// See [`PluginContext::calculate_path`].
pub fn calculate_path(
    test_base_path: &Path,
    suite: &str,
    kitchen_root: &Path,
    name: &str,
    file: bool,
) -> Option<PathBuf> {
    [
        test_base_path.join(suite).join(name),
        test_base_path.join(name),
        kitchen_root.join(name),
    ]
    .into_iter()
    .find(|p| if file { p.is_file() } else { p.is_dir() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_dir_wins_then_base_then_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let tbp = root.join("test/integration");
        std::fs::create_dir_all(tbp.join("web")).unwrap();
        assert_eq!(
            calculate_path(&tbp, "web", root, "bootstrap.sh", true),
            None
        );
        std::fs::write(root.join("bootstrap.sh"), "").unwrap();
        assert_eq!(
            calculate_path(&tbp, "web", root, "bootstrap.sh", true),
            Some(root.join("bootstrap.sh"))
        );
        std::fs::write(tbp.join("bootstrap.sh"), "").unwrap();
        assert_eq!(
            calculate_path(&tbp, "web", root, "bootstrap.sh", true),
            Some(tbp.join("bootstrap.sh"))
        );
        std::fs::write(tbp.join("web/bootstrap.sh"), "").unwrap();
        assert_eq!(
            calculate_path(&tbp, "web", root, "bootstrap.sh", true),
            Some(tbp.join("web/bootstrap.sh"))
        );
        // A directory is not a file, and the other way round.
        std::fs::create_dir_all(tbp.join("web/data")).unwrap();
        assert_eq!(calculate_path(&tbp, "web", root, "data", true), None);
        assert_eq!(
            calculate_path(&tbp, "web", root, "data", false),
            Some(tbp.join("web/data"))
        );
    }
}
