//! The `kitchen-driver` command: a thin layer over the library.

use clap::Parser;

fn main() {
    let cli = kitchen_driver::cli::Cli::parse();
    std::process::exit(kitchen_driver::cli::run(cli));
}
