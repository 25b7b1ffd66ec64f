//! kitchen-driver: reads test-kitchen's `kitchen.yml` and takes each suite x platform instance
//! through create, converge, setup, verify and destroy on LXD or Docker.
//!
//! The library is what the `kitchen-driver` binary runs; it can be imported to drive instances
//! from Rust. Modules, one per area:
//! - [`config`]: kitchen.yml loading (pure).
//! - [`cli`]: the command line, test-kitchen's verbs and exit codes.

pub mod cli;
pub mod config;

/// The version of this crate, as printed by `kitchen-driver --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
