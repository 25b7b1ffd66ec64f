//! ecs-runner: runs the suites of a kitchen.yml as Amazon ECS tasks, or locally on Docker from
//! the same task definitions, and reports as kitchen-driver does.
//!
//! The flow of `ecs-runner run`: kitchen-driver's loader reads the project
//! ([`kitchen_driver::config::load_with_document`]) and selects instances; [`run::prepare`]
//! resolves each instance's [`settings`], refuses what a task cannot run ([`bundle::Plan`]),
//! packs the bundle and renders the [`taskdef`], all before any task starts; a bundle too
//! large to travel inline becomes an [`image`] pushed to `ecs.registry`. Then a backend
//! runs them: [`ecs`] (register, RunTask, DescribeTasks, CloudWatch Logs, StopTask) or
//! [`local`] (the same definitions on the Docker engine). Both read the task's output through
//! a [`transcript::Transcript`], decide with [`classify`], and emit kitchen-driver's
//! [`kitchen_driver::events::Event`]s (through [`report::Sink`]) that kitchen-driver's text,
//! JSON-lines and JUnit reporters render.
//!
//! Modules, one per concern:
//! - [`settings`]: the `ecs:` mappings, merged (pure).
//! - [`bundle`]: what runs in the task and its entrypoint (pure but for reading files).
//! - [`taskdef`]: the task definition, in the API's JSON shape (pure).
//! - [`image`]: bundles too large to travel inline, as images pushed to `ecs.registry`.
//! - [`transcript`]: the entrypoint's markers and TAP, read back (pure).
//! - [`classify`]: stopped tasks and RunTask failures, decided (pure).
//! - [`report`]: outcomes, exit codes, and the events a run emits.
//! - [`run`]: what both backends share; [`local`] and [`ecs`]: the backends.
//! - [`cli`]: the command line.

pub mod bundle;
pub mod classify;
pub mod cli;
pub mod ecs;
mod error;
pub mod image;
pub mod local;
pub mod report;
pub mod run;
pub mod settings;
pub mod taskdef;
pub mod transcript;

pub use error::{
    EXIT_FAILED, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED, EXIT_PASSED, EXIT_USAGE, Error, Result,
};

/// The version of this crate, as printed by `ecs-runner --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
