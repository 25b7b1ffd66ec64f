//! What plugins receive: the [`InstanceContext`] of one instance (drivers get it as is), and
//! the [`PluginContext`] of one provisioner or verifier action, which adds the instance's
//! state and a connection to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::InstanceConfig;
use crate::error::{Error, Result};
use crate::report::InstanceOutput;
use crate::state::{State, StateFile};
use crate::transport::Connection;

/// Everything known about one instance while the runner works on it: its configuration,
/// where the project is, where its output goes and the host environment host commands see.
/// Built once per instance by the [`Runner`](crate::lifecycle::Runner) (and by `login`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InstanceContext {
    /// The instance's merged configuration.
    pub instance: Arc<InstanceConfig>,
    /// The project directory (`kitchen_root`).
    pub kitchen_root: PathBuf,
    /// `<kitchen_root>/test/integration` unless overridden.
    pub test_base_path: PathBuf,
    /// Live output and the instance's log.
    pub output: InstanceOutput,
    /// The host environment (see [`crate::host`]): the process environment unless the
    /// runner was given another.
    pub host_env: Arc<Vec<(String, String)>>,
    /// The state file the runner keeps for the instance, when it keeps one (the plugin
    /// protocol leaves state to test-kitchen): see [`InstanceContext::save_state`].
    pub state_file: Option<StateFile>,
}

impl InstanceContext {
    /// A context for `instance` of the project at `kitchen_root`, with the process
    /// environment as host environment.
    pub fn new(
        instance: Arc<InstanceConfig>,
        kitchen_root: impl Into<PathBuf>,
        test_base_path: impl Into<PathBuf>,
        output: InstanceOutput,
    ) -> Self {
        Self {
            instance,
            kitchen_root: kitchen_root.into(),
            test_base_path: test_base_path.into(),
            output,
            host_env: Arc::new(std::env::vars().collect()),
            state_file: None,
        }
    }

    /// The same context, saving state to `state_file` on [`InstanceContext::save_state`].
    #[must_use]
    pub fn with_state_file(mut self, state_file: StateFile) -> Self {
        self.state_file = Some(state_file);
        self
    }

    /// Saves `state` now, in the middle of a step. A driver calls it the moment it records a
    /// resource that is about to exist (a container's name before the create request, its
    /// id after), so a process killed at any later moment leaves a state file that names
    /// it and `destroy` finds it without guessing. Does nothing without a state file.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when the file cannot be written.
    pub fn save_state(&self, state: &State) -> Result<()> {
        match &self.state_file {
            Some(file) => file.save(state),
            None => Ok(()),
        }
    }

    /// The same context with this host environment.
    #[must_use]
    pub fn with_host_env(mut self, host_env: Arc<Vec<(String, String)>>) -> Self {
        self.host_env = host_env;
        self
    }

    /// The context of one provisioner or verifier action on this instance.
    pub fn plugin<'a>(
        &'a self,
        state: &'a State,
        connection: Arc<dyn Connection>,
    ) -> PluginContext<'a> {
        PluginContext {
            instance: &self.instance,
            kitchen_root: &self.kitchen_root,
            test_base_path: &self.test_base_path,
            state,
            connection,
            output: &self.output,
            host_env: &self.host_env,
        }
    }
}

/// Everything a provisioner or verifier may use for one action on one instance: a view of
/// its [`InstanceContext`] plus its state and connection ([`InstanceContext::plugin`]).
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
    /// Where this instance's configured paths resolve ([`ConfigPaths`]).
    pub fn paths(&self) -> ConfigPaths<'a> {
        ConfigPaths {
            instance: self.instance,
            kitchen_root: self.kitchen_root,
            test_base_path: self.test_base_path,
        }
    }

    /// See [`ConfigPaths::calculate_path`].
    pub fn calculate_path(&self, name: &str, file: bool) -> Option<PathBuf> {
        self.paths().calculate_path(name, file)
    }

    /// See [`ConfigPaths::expand_path`].
    pub fn expand_path(&self, p: &str) -> PathBuf {
        self.paths().expand_path(p)
    }
}

/// Where an instance's configured host paths resolve: the project and the instance, without
/// any runtime. The preflight check resolves and checks a plugin's files with it before
/// anything is created ([`crate::provisioner::Provisioner::check_files`]), and the steps
/// resolve them the same way ([`PluginContext::paths`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConfigPaths<'a> {
    /// The instance's merged configuration.
    pub instance: &'a InstanceConfig,
    /// The project directory.
    pub kitchen_root: &'a Path,
    /// `<kitchen_root>/test/integration` unless overridden.
    pub test_base_path: &'a Path,
}

impl<'a> ConfigPaths<'a> {
    /// The paths of `instance` in a project.
    pub fn new(
        instance: &'a InstanceConfig,
        kitchen_root: &'a Path,
        test_base_path: &'a Path,
    ) -> Self {
        Self {
            instance,
            kitchen_root,
            test_base_path,
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

    /// A configuration error about the merged key `key` (`provisioner.playbook`) of a `kind`
    /// block: it names where the key was written (`suites[1].provisioner.playbook`, file,
    /// line and column), then `problem`, then what to do.
    pub fn refuse(&self, kind: &'static str, key: &str, problem: &str, todo: &str) -> Error {
        Error::config(
            kind,
            &self.instance.name,
            format!("{}: {problem}; {todo}", self.instance.origins.describe(key)),
        )
    }
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
