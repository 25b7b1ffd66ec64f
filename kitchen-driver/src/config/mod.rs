//! kitchen.yml loading: discovery, ERB, YAML, merging and instance expansion, as test-kitchen
//! 4.1.0 does it (see `../shared/reference/test-kitchen-semantics.md`).
//!
//! Everything here is pure apart from reading the files (and running `ruby` for ERB that cannot
//! be evaluated natively): the result is a [`Project`] whose [`InstanceConfig`]s carry the fully
//! merged plugin blocks the lifecycle consumes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A plugin block (driver, provisioner, verifier, transport, lifecycle) after merging: the
/// user's keys as written, with `name` set. Values are kept generic because plugins this
/// project does not implement are normal in real files and must be shown as written.
pub type PluginConfig = serde_json::Map<String, serde_json::Value>;

/// A loaded kitchen project: where it lives and its instances in test-kitchen's order
/// (suite-major, file order).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Project {
    /// The directory holding the project kitchen.yml (test-kitchen's `kitchen_root`).
    pub kitchen_root: PathBuf,
    /// `<kitchen_root>/test/integration` unless overridden.
    pub test_base_path: PathBuf,
    /// The files that were read, in merge order (global, project, local).
    pub files: Vec<PathBuf>,
    /// Every instance after includes/excludes, in order.
    pub instances: Vec<InstanceConfig>,
}

/// One suite x platform instance and its merged configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct InstanceConfig {
    /// `suite-platform` with `_ , /` replaced by `-` and `.` deleted.
    pub name: String,
    /// The suite's name as written.
    pub suite: String,
    /// The platform's name as written.
    pub platform: String,
    /// Merged driver block (`name` is `dummy` when unset).
    pub driver: PluginConfig,
    /// Merged provisioner block (`name` is `shell` when unset).
    pub provisioner: PluginConfig,
    /// Merged verifier block (`name` is `busser` when unset).
    pub verifier: PluginConfig,
    /// Merged transport block (`ssh`, or `winrm` for platforms named `win*`).
    pub transport: PluginConfig,
    /// Merged lifecycle hooks (`pre_create`, `post_converge`, ...), lists concatenated.
    pub lifecycle: PluginConfig,
}

impl InstanceConfig {
    /// The plugin name of a block (`driver.name` etc.), or `""` when missing.
    pub fn plugin_name(block: &PluginConfig) -> &str {
        block.get("name").and_then(|v| v.as_str()).unwrap_or("")
    }
}
