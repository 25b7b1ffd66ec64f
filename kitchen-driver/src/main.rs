//! The `kitchen-driver` command: a thin layer over the library.

use clap::Parser;

/// Test infrastructure code in LXD and Docker containers, reading test-kitchen's kitchen.yml.
#[derive(Parser)]
#[command(name = "kitchen-driver", version = kitchen_driver::VERSION)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
