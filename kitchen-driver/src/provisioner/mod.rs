//! Provisioners: what `converge` runs against an instance.
//!
//! A [`Provisioner`] gets a [`PluginContext`] (the instance's config, paths, state, a
//! [`Connection`](crate::transport::Connection) and its output) and either succeeds or returns an
//! error that fails the converge. Found by name with [`for_instance`].
//!
//! # Adding a provisioner
//!
//! 1. A module here with a typed config read by `config::parse_block("provisioner", ..)`
//!    (serde, `#[serde(default)]`; unknown keys are ignored, since the loader adds
//!    `kitchen_root`, `test_base_path`, `log_level`).
//! 2. `impl Provisioner`: run things in the instance with `ctx.connection.execute(..)` /
//!    `exec(..)` (output streams to `ctx.output` when you pass it as the sink), copy files with
//!    `upload`/`upload_set`. Tools that run on the host and connect by themselves (Ansible)
//!    get the runtime and instance from `ctx.connection.target()` ([`Target::Docker`] with the
//!    container id, [`Target::Lxd`] with name and project) and run as a
//!    [`HostCommand`](crate::host::HostCommand) with `ctx.host_env`, which streams their
//!    lines to `ctx.output`.
//! 3. A name in [`for_instance`] and [`SUPPORTED_PROVISIONERS`].
//!
//! ```no_run
//! use async_trait::async_trait;
//! use kitchen_driver::plugin::PluginContext;
//! use kitchen_driver::provisioner::Provisioner;
//!
//! struct Touch;
//!
//! #[async_trait]
//! impl Provisioner for Touch {
//!     fn name(&self) -> &'static str {
//!         "touch"
//!     }
//!     async fn converge(&self, ctx: &PluginContext<'_>) -> kitchen_driver::Result<()> {
//!         ctx.connection
//!             .execute("touch /tmp/converged", "converge", ctx.output)
//!             .await?;
//!         Ok(())
//!     }
//! }
//! ```
//!
//! [`Target::Docker`]: crate::transport::Target::Docker
//! [`Target::Lxd`]: crate::transport::Target::Lxd

pub mod ansible;
pub mod shell;

use async_trait::async_trait;

use crate::config::InstanceConfig;
use crate::error::{Error, Result};
use crate::plugin::{ConfigPaths, PluginContext};

/// The provisioner names this build knows.
pub const SUPPORTED_PROVISIONERS: &[&str] = &["shell", "ansible_playbook"];

/// Converges an instance.
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// The plugin name (`shell`, `ansible_playbook`).
    fn name(&self) -> &'static str;

    /// Runs the provisioning. Output goes to `ctx.output` live.
    ///
    /// # Errors
    /// [`Error::CommandFailed`] when the provisioning command fails, runtime errors otherwise.
    async fn converge(&self, ctx: &PluginContext<'_>) -> Result<()>;

    /// Checks the host files the configuration names (a script, a playbook, a roles
    /// directory), so that a missing one refuses the command before anything is created
    /// instead of failing the converge after a create. The preflight check calls it for every
    /// command that reaches converge; `converge` resolves the same files the same way. It
    /// must not touch any instance.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key as written (see [`ConfigPaths::refuse`]), the file,
    /// and what to do.
    fn check_files(&self, paths: &ConfigPaths<'_>) -> Result<()> {
        let _ = paths;
        Ok(())
    }
}

/// The provisioner named by the instance's `provisioner.name`.
///
/// # Errors
/// [`Error::UnknownPlugin`] listing the supported names; [`Error::Config`] for bad keys.
pub fn for_instance(instance: &InstanceConfig) -> Result<Box<dyn Provisioner>> {
    match InstanceConfig::plugin_name(&instance.provisioner) {
        "shell" => Ok(Box::new(shell::ShellProvisioner::from_config(
            &instance.name,
            &instance.provisioner,
        )?)),
        "ansible_playbook" => Ok(Box::new(ansible::AnsiblePlaybookProvisioner::from_config(
            &instance.name,
            &instance.provisioner,
        )?)),
        other => Err(Error::UnknownPlugin {
            kind: "provisioner",
            name: other.to_string(),
            instance: instance.name.clone(),
            supported: SUPPORTED_PROVISIONERS.join(", "),
        }),
    }
}
