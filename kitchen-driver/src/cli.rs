//! The command line: test-kitchen's verbs, flags and exit codes.
//!
//! Exit codes as test-kitchen: 0 success; 1 usage errors and "no instances matched"; 10 an
//! instance failure; 20 "N actions failed".

use clap::{Args, Parser, Subcommand};

/// Test infrastructure code in LXD and Docker containers, reading test-kitchen's kitchen.yml.
#[derive(Debug, Parser)]
#[command(name = "kitchen-driver", version = crate::VERSION)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// List instances and their last action (`kitchen list`).
    List(ListArgs),
    /// Print the fully merged configuration of each instance (`kitchen diagnose`).
    Diagnose(DiagnoseArgs),
}

/// `list [REGEX...|all] [--bare] [--json]`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// `all`, an exact instance name, or a regular expression (several are joined with `|`).
    pub instances: Vec<String>,
    /// Print only instance names, one per line.
    #[arg(short, long)]
    pub bare: bool,
    /// Print JSON.
    #[arg(short, long)]
    pub json: bool,
}

/// `diagnose [REGEX] [--json]`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// `all`, an exact instance name, or a regular expression.
    pub instances: Vec<String>,
    /// Print JSON instead of YAML.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::List(_) | Command::Diagnose(_) => {
            eprintln!("kitchen-driver: this command is not implemented yet");
            1
        }
    }
}
