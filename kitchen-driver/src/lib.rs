//! kitchen-driver: reads test-kitchen's `kitchen.yml` and takes each suite x platform instance
//! through create, converge, setup, verify and destroy on LXD or Docker.
//!
//! The library is what the `kitchen-driver` binary runs; it can be imported to drive instances
//! from Rust.

/// The version of this crate, as printed by `kitchen-driver --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
