//! Drivers (the runtime an instance lives in) and connections (how to run commands in it).
//!
//! A [`Driver`] creates and destroys an instance and hands out a [`Connection`] (see
//! [`crate::transport`]): the runtime's own exec and file APIs play test-kitchen's transport
//! (no SSH). Provisioners and verifiers only ever see a `Connection`, so they work on every
//! runtime.
//!
//! Drivers are found by name with [`for_instance`]: `lxd` (over `lxd-client`) and `docker`
//! (over bollard).

pub mod docker;
pub mod lxd;
mod lxd_image;
pub(crate) mod lxd_remote;
pub mod naming;
mod ready;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{InstanceConfig, PluginConfig};
use crate::error::{Error, Result};
use crate::plugin::InstanceContext;
use crate::state::State;
use crate::transport::Connection;

/// The driver names this build knows.
pub const SUPPORTED_DRIVERS: &[&str] = &["lxd", "docker"];

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
    async fn create(&self, ctx: &InstanceContext, state: &mut State) -> Result<()>;

    /// Checks the host files the configuration names (a Dockerfile), so that a missing one
    /// refuses the command before anything is created. The preflight check calls it for every
    /// command that takes an action. It must not reach the runtime.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key as written (see
    /// [`ConfigPaths::refuse`](crate::plugin::ConfigPaths::refuse)), the file, and what to do.
    fn check_files(&self, paths: &crate::plugin::ConfigPaths<'_>) -> Result<()> {
        let _ = paths;
        Ok(())
    }

    /// Removes everything the instance owns; fine when nothing exists.
    ///
    /// # Errors
    /// Runtime errors other than "not found".
    async fn destroy(&self, ctx: &InstanceContext, state: &mut State) -> Result<()>;

    /// A connection to a created instance.
    ///
    /// # Errors
    /// [`Error::NotCreated`] when `state` records no instance.
    async fn connection(&self, ctx: &InstanceContext, state: &State)
    -> Result<Arc<dyn Connection>>;

    /// Returns a created instance to its state right after create, running and ready
    /// (`kitchen-driver reset`): LXD restores its [`PRISTINE_SNAPSHOT`], Docker recreates the
    /// container from its image. The caller records `create` as the last action.
    ///
    /// # Errors
    /// [`Error::NotCreated`] when `state` records no instance; runtime errors; a driver
    /// without reset says so.
    async fn reset(&self, ctx: &InstanceContext, _state: &mut State) -> Result<()> {
        Err(Error::Runtime {
            instance: ctx.instance.name.clone(),
            message: format!(
                "the {} driver cannot reset an instance: destroy and create it instead",
                self.name()
            ),
        })
    }

    /// The platform image's identity for the converge cache key (LXD fingerprint, Docker image
    /// id); `None` for a driver without a converge cache (see [`crate::converge_cache`]).
    ///
    /// # Errors
    /// Runtime errors; a missing image.
    async fn base_image_id(&self, _ctx: &InstanceContext) -> Result<Option<String>> {
        Ok(None)
    }

    /// The name of this checkout's cached image holding `key`, if there is one.
    ///
    /// # Errors
    /// Runtime errors.
    async fn find_converged(&self, _ctx: &InstanceContext, _key: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// Publishes the converged instance as this checkout's cached image for `key`; returns its
    /// name.
    ///
    /// # Errors
    /// Runtime errors; a driver without a converge cache says so.
    async fn publish_converged(
        &self,
        ctx: &InstanceContext,
        _state: &State,
        _key: &str,
    ) -> Result<String> {
        Err(Error::Runtime {
            instance: ctx.instance.name.clone(),
            message: format!("the {} driver has no converge cache", self.name()),
        })
    }

    /// Removes this checkout's least recently used cached images beyond `max`; returns their
    /// names.
    ///
    /// # Errors
    /// Runtime errors.
    async fn evict_converged(&self, _ctx: &InstanceContext, _max: usize) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The LXD snapshot taken at create (on copy-on-write pools) that `reset` restores.
pub const PRISTINE_SNAPSHOT: &str = "kitchen-pristine";

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
