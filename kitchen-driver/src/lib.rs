//! kitchen-driver: reads test-kitchen's `kitchen.yml` and takes each suite x platform instance
//! through create, converge, setup, verify and destroy on LXD or Docker.
//!
//! The library is what the `kitchen-driver` binary runs; it can be imported to drive instances
//! from Rust. Modules, one per area:
//! - [`config`]: kitchen.yml loading (pure).
//! - [`lifecycle`]: the action state machine, hooks and the concurrent [`lifecycle::Runner`].
//! - [`state`]: `.kitchen/<instance>.yml`, written atomically, with a per-instance lock.
//! - [`driver`]: the [`driver::Driver`] and [`driver::Connection`] traits and the Docker driver.
//! - [`provisioner`] and [`verifier`]: the plugin traits and the `shell` implementations.
//! - [`plugin`]: the context provisioners and verifiers receive.
//! - [`events`]: the typed run events the runner emits and the [`events::Reporter`] trait.
//! - [`report`]: the reporters that render events: text lines, live display, log files,
//!   JSON lines, JUnit, the closing summary.
//! - [`cli`]: the command line, test-kitchen's verbs and exit codes.

pub mod cli;
pub mod config;
pub mod driver;
mod error;
pub mod events;
pub mod lifecycle;
pub mod plugin;
pub mod provisioner;
pub mod report;
pub mod state;
pub mod verifier;

pub use error::{Error, Result};

/// The version of this crate, as printed by `kitchen-driver --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
