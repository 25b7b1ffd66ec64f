//! The `ecs-runner` command: a thin layer over the library.

use clap::Parser;

fn main() {
    let cli = ecs_runner::cli::Cli::parse();
    std::process::exit(ecs_runner::cli::main(cli));
}
