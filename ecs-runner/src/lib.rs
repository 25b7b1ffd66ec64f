//! ecs-runner: runs the suites of a kitchen.yml as Amazon ECS tasks, or locally on Docker from
//! the same task definitions, and reports as kitchen-driver does.

/// The version of this crate, as printed by `ecs-runner --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
