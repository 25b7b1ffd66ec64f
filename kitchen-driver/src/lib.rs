//! kitchen-driver: reads test-kitchen's `kitchen.yml` and takes each suite x platform instance
//! through create, converge, setup, verify and destroy on LXD or Docker.
//!
//! The library is what the `kitchen-driver` binary runs; it can be imported to drive instances
//! from Rust. Modules, one per area:
//! - [`config`]: kitchen.yml loading (pure).
//! - [`action`]: the five lifecycle actions and their names.
//! - [`lifecycle`]: the action state machine, hooks and the concurrent [`lifecycle::Runner`].
//! - [`state`]: `.kitchen/<instance>.yml`, written atomically, with a per-instance lock.
//! - [`driver`]: the [`driver::Driver`] trait and the LXD and Docker drivers.
//! - [`converge_cache`]: converged instances published as images, keyed on every input.
//! - [`transport`]: the [`transport::Connection`] a driver hands out (exec, upload/download,
//!   terminal), as test-kitchen's transports.
//! - [`provisioner`] and [`verifier`]: the plugin traits and their implementations
//!   (`shell`, `ansible_playbook`; `shell`, `bats`).
//! - [`plugin`]: the one context per instance ([`plugin::InstanceContext`]) drivers get, and
//!   the [`plugin::PluginContext`] of a provisioner or verifier action.
//! - [`host`]: the one runner of host commands (hooks, shell verifier, `ansible-playbook`).
//! - [`events`]: the typed run events the runner emits and the [`events::Reporter`] trait.
//! - [`report`]: the reporters that render events: text lines, live display, log files,
//!   JSON lines, JUnit, the closing summary.
//! - [`cli`]: the command line, test-kitchen's verbs and exit codes.

pub mod action;
pub mod cli;
pub mod config;
pub mod converge_cache;
pub mod driver;
mod error;
pub mod events;
pub mod host;
pub mod lifecycle;
pub mod orphans;
pub mod plugin;
pub mod provisioner;
pub mod report;
pub mod state;
pub mod transport;
pub mod verifier;

pub use action::Action;
pub use error::{CancelReason, Error, Result};

/// The version of this crate, as printed by `kitchen-driver --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
