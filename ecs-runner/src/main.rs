//! The `ecs-runner` command: a thin layer over the library.

use clap::Parser;

/// Run kitchen suites as Amazon ECS tasks.
#[derive(Parser)]
#[command(name = "ecs-runner", version = ecs_runner::VERSION)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
