//! kitchen.yml loading: discovery, ERB, YAML, merging and instance expansion, as test-kitchen
//! 4.1.0 does it (see `../shared/reference/test-kitchen-semantics.md`).
//!
//! Everything here is pure apart from reading the files (and running `ruby` for ERB that cannot
//! be evaluated natively): the result is a [`Project`] whose [`InstanceConfig`]s carry the fully
//! merged plugin blocks the lifecycle consumes.
//!
//! ```no_run
//! use kitchen_driver::config::{self, LoadOptions};
//!
//! # fn main() -> Result<(), config::ConfigError> {
//! let project = config::load(&LoadOptions::from_process(".".into()))?;
//! for instance in project.select(&["default".to_owned()])? {
//!     println!("{} uses driver {}", instance.name, instance.driver_name());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Steps, each in its own module: [`ConfigFiles`] discovery (env vars, dotted/undotted
//! names), ERB (native for the common forms, Ruby's ERB otherwise), YAML (Psych-compatible
//! values), deep merge (global < project < local), then test-kitchen's data munging and
//! instance expansion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod discovery;
mod erb;
mod error;
pub mod filter;
mod munge;
pub(crate) mod numbers;
mod origins;
mod select;
pub mod unused;
pub(crate) mod value;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

pub use discovery::ConfigFiles;
pub use error::ConfigError;
pub use munge::instance_name;
pub use origins::{ConfigOrigins, Origin};
pub use value::Pos;

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
    /// Where each key of the blocks above was written, for errors found after loading.
    #[serde(skip)]
    pub origins: ConfigOrigins,
}

/// Deserializes a plugin block into a plugin's typed configuration, naming the failing key
/// (drivers, provisioners and verifiers read their blocks with it when an action runs).
///
/// # Errors
/// [`crate::Error::Config`] naming the key path and what is wrong.
pub(crate) fn parse_block<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    instance: &str,
    block: &PluginConfig,
) -> crate::Result<T> {
    let value = serde_json::Value::Object(block.clone());
    // Keys the typed configuration does not use are reported (see [`unused`]), so none is
    // dropped silently.
    let mut unused_keys = Vec::new();
    let mut on_unused = |path: serde_ignored::Path<'_>| unused_keys.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut on_unused);
    let parsed = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner().to_string();
        let inner = numbers::explain_big_integer(&inner).unwrap_or(inner);
        crate::Error::config(kind, instance, format!("key `{}`: {inner}", e.path()))
    });
    let plugin = InstanceConfig::plugin_name(block);
    for key in unused_keys {
        unused::record(kind, plugin, key);
    }
    parsed
}

impl InstanceConfig {
    /// The plugin name of a block (`driver.name` etc.), or `""` when missing.
    pub fn plugin_name(block: &PluginConfig) -> &str {
        block.get("name").and_then(|v| v.as_str()).unwrap_or("")
    }
}

impl InstanceConfig {
    /// `driver.name` (`dummy` by default).
    pub fn driver_name(&self) -> &str {
        Self::plugin_name(&self.driver)
    }

    /// `provisioner.name` (`shell` by default).
    pub fn provisioner_name(&self) -> &str {
        Self::plugin_name(&self.provisioner)
    }

    /// `verifier.name` (`busser` by default).
    pub fn verifier_name(&self) -> &str {
        Self::plugin_name(&self.verifier)
    }

    /// `transport.name` (`ssh`, or `winrm` for platforms named `win*`).
    pub fn transport_name(&self) -> &str {
        Self::plugin_name(&self.transport)
    }
}

/// How to load a project: the working directory (test-kitchen's `kitchen_root` is the current
/// directory) and the environment the loader and ERB see.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The project directory (where `kitchen.yml` is looked for; `kitchen_root`).
    pub dir: PathBuf,
    /// The environment: `KITCHEN_YAML`, `KITCHEN_LOCAL_YAML`, `KITCHEN_GLOBAL_YAML` (and their
    /// `_YML` spellings), `HOME`, `KITCHEN_LOG`, and whatever ERB reads through `ENV`. Ruby,
    /// when needed for ERB, runs with exactly this environment.
    pub env: BTreeMap<String, String>,
    /// `--test-base-path`: overrides `<dir>/test/integration`.
    pub test_base_path: Option<PathBuf>,
    /// `--log-level` (else `KITCHEN_LOG`, else `info`), forced into plugin blocks.
    pub log_level: Option<String>,
    /// `--debug` on converge/verify, forced into provisioner, verifier and lifecycle blocks.
    pub debug: bool,
}

impl LoadOptions {
    /// Options for `dir` with the given environment.
    pub fn new(dir: PathBuf, env: BTreeMap<String, String>) -> Self {
        Self {
            dir,
            env,
            test_base_path: None,
            log_level: None,
            debug: false,
        }
    }

    /// Options for `dir` with this process's environment.
    pub fn from_process(dir: PathBuf) -> Self {
        Self::new(dir, std::env::vars().collect())
    }

    /// Sets `--test-base-path`.
    #[must_use]
    pub fn with_test_base_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.test_base_path = Some(path.into());
        self
    }

    /// Sets `--log-level`.
    #[must_use]
    pub fn with_log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = Some(level.into());
        self
    }

    /// Sets `--debug`.
    #[must_use]
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }
}

/// Loads the project in `opts.dir` as test-kitchen 4.1.0 does: discovers the global, project
/// and local files, evaluates ERB, parses YAML, deep-merges, applies test-kitchen's data
/// munging and expands suites x platforms into instances.
///
/// # Errors
/// [`ConfigError`] with file, line and column where the input is at fault: a missing project
/// file, both `kitchen.yml` and `.kitchen.yml`, ERB that fails (or needs Ruby when none is
/// installed), YAML syntax, values of the wrong type, invalid `/regex/` filters.
pub fn load(opts: &LoadOptions) -> Result<Project, ConfigError> {
    load_with_document(opts).map(|(project, _)| project)
}

/// As [`load`], and also the merged document itself (every top-level key after ERB and the
/// global < project < local merge, before test-kitchen's munging), for tools that read keys
/// of their own from kitchen.yml, such as ecs-runner's `ecs:` mappings.
///
/// # Errors
/// As [`load`].
pub fn load_with_document(
    opts: &LoadOptions,
) -> Result<(Project, serde_json::Map<String, serde_json::Value>), ConfigError> {
    let _span = tracing::debug_span!("config_load", dir = %opts.dir.display()).entered();
    let dir = absolute(&opts.dir);
    let files = ConfigFiles::discover(&dir, &opts.env)?;
    let erb_env = erb::ErbEnv {
        env: &opts.env,
        cwd: &dir,
    };
    let mut read = Vec::new();
    let mut merged = value::Map::new();
    for path in [
        files.global.as_ref(),
        Some(&files.project),
        files.local.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let is_project = path == &files.project;
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_project => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound { path: path.clone() });
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        read.push(path.clone());
        let map = parse_file(&text, path, &erb_env)?;
        merged
            .rmerge_in(&map)
            .map_err(|c| ConfigError::merge(c, ""))?;
    }

    let document = value::map_to_json(&merged);
    Ok((finish(opts, dir, read, merged)?, document))
}

/// Loads a project from the text of its project file alone (no global or local file), as if
/// it were `kitchen.yml` in `opts.dir`. Nothing is read from disk except by ERB (through
/// Ruby, when `opts.env` has a `PATH` with `ruby` on it).
///
/// ```
/// use kitchen_driver::config::{self, LoadOptions};
///
/// let yaml = "platforms: [{name: ubuntu-22.04}]\nsuites: [{name: default}]\n";
/// let opts = LoadOptions::new("/project".into(), Default::default());
/// let project = config::load_str(yaml, &opts).expect("valid config");
/// assert_eq!(project.instances[0].name, "default-ubuntu-2204");
/// assert_eq!(project.instances[0].transport_name(), "ssh");
/// ```
///
/// # Errors
/// As [`load`], minus the file-system ones.
pub fn load_str(text: &str, opts: &LoadOptions) -> Result<Project, ConfigError> {
    let dir = absolute(&opts.dir);
    let path = dir.join("kitchen.yml");
    let erb_env = erb::ErbEnv {
        env: &opts.env,
        cwd: &dir,
    };
    let map = parse_file(text, &path, &erb_env)?;
    finish(opts, dir, vec![path], map)
}

fn finish(
    opts: &LoadOptions,
    dir: PathBuf,
    read: Vec<PathBuf>,
    merged: value::Map,
) -> Result<Project, ConfigError> {
    let root_s = dir.to_string_lossy().into_owned();
    let tbp = opts
        .test_base_path
        .as_ref()
        .map(|p| dir.join(p))
        .unwrap_or_else(|| dir.join("test").join("integration"));
    let log_level = opts
        .log_level
        .clone()
        .or_else(|| opts.env.get("KITCHEN_LOG").map(|l| l.to_lowercase()))
        .unwrap_or_else(|| "info".to_owned());
    let kc = munge::KitchenConfig {
        kitchen_root: root_s,
        test_base_path: tbp.to_string_lossy().into_owned(),
        log_level,
        debug: opts.debug,
    };
    let project_tbp = match merged
        .get("kitchen")
        .and_then(value::Node::as_map)
        .and_then(|k| k.get("test_base_path"))
        .and_then(value::Node::as_str)
    {
        Some(p) => dir.join(p),
        None => tbp,
    };
    let instances = munge::instances(merged, &kc)?;
    Ok(Project {
        kitchen_root: dir,
        test_base_path: project_tbp,
        files: read,
        instances,
    })
}

/// One file: ERB, YAML, "must be a Hash", and the loader's `normalize` (`driver: x` and
/// `provisioner: x` strings become `{name: x}`, `busser: v` becomes `{version: v}`).
fn parse_file(
    text: &str,
    path: &Path,
    erb_env: &erb::ErbEnv<'_>,
) -> Result<value::Map, ConfigError> {
    let rendered = erb::render(text, path, erb_env)?;
    let file: Arc<Path> = Arc::from(path);
    let Some(node) = yaml::parse(&rendered, &file)? else {
        return Ok(value::Map::new());
    };
    let value::Value::Map(map) = node.v else {
        return Err(ConfigError::Type {
            found: node.kind().to_owned(),
            at: node.pos,
            path: "(top level)".into(),
            expected: "a mapping (test-kitchen: \"Result of parse was not a Hash\")".into(),
        });
    };
    Ok(normalize(map))
}

fn normalize(map: value::Map) -> value::Map {
    use value::{Node, Value};
    map.iter()
        .map(|(k, v)| {
            let nv = match (k.as_str(), &v.v) {
                ("driver" | "provisioner" | "busser", Value::Null) => Node {
                    v: Value::Map(value::Map::new()),
                    pos: v.pos.clone(),
                },
                ("driver" | "provisioner" | "busser", Value::Str(_)) => {
                    let mut m = value::Map::new();
                    m.insert(if k == "busser" { "version" } else { "name" }, v.clone());
                    Node {
                        v: Value::Map(m),
                        pos: v.pos.clone(),
                    }
                }
                (_, Value::Map(inner)) => Node {
                    v: Value::Map(normalize(inner.clone())),
                    pos: v.pos.clone(),
                },
                _ => v.clone(),
            };
            (k.clone(), nv)
        })
        .collect()
}

/// `p` made absolute (without resolving symlinks; `.` components dropped).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
