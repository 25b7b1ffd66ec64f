//! Provisioners: what `converge` runs against an instance.
//!
//! A [`Provisioner`] gets a [`PluginContext`] (the instance's config, paths, state, a
//! [`Connection`](crate::driver::Connection) and its output) and either succeeds or returns an
//! error that fails the converge. Found by name with [`for_instance`].

pub mod ansible;
pub mod shell;

use async_trait::async_trait;

use crate::config::InstanceConfig;
use crate::error::{Error, Result};
use crate::plugin::PluginContext;

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
