//! The command line: test-kitchen's verbs, flags and exit codes.
//!
//! Exit codes as test-kitchen: 0 success; 1 usage errors and "no instances matched"; 10 an
//! instance failure; 20 "N actions failed" (and other errors while running actions).

use clap::{Args, Parser, Subcommand};

use crate::lifecycle::{self, Action};

mod actions;

pub use actions::{ActionArgs, EXIT_ACTIONS_FAILED, EXIT_USAGE, ExecArgs, LoginArgs, TestArgs};

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
    /// Create instances (`kitchen create`).
    Create(ActionArgs),
    /// Create as needed, then provision (`kitchen converge`).
    Converge(ActionArgs),
    /// Create and converge as needed, then the (empty) setup step (`kitchen setup`).
    Setup(ActionArgs),
    /// Create, converge and set up as needed, then verify (`kitchen verify`).
    Verify(ActionArgs),
    /// Destroy instances and delete their state (`kitchen destroy`).
    Destroy(ActionArgs),
    /// Destroy, create..verify, then destroy per --destroy (`kitchen test`).
    Test(TestArgs),
    /// Open an interactive shell in one instance (`kitchen login`).
    Login(LoginArgs),
    /// Run a command in instances (`kitchen exec -c CMD`).
    Exec(ExecArgs),
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
            EXIT_USAGE
        }
        Command::Create(a) => {
            actions::run_lifecycle(a, lifecycle::Command::Action(Action::Create), false)
        }
        Command::Converge(a) => {
            actions::run_lifecycle(a, lifecycle::Command::Action(Action::Converge), false)
        }
        Command::Setup(a) => {
            actions::run_lifecycle(a, lifecycle::Command::Action(Action::Setup), false)
        }
        Command::Verify(a) => {
            actions::run_lifecycle(a, lifecycle::Command::Action(Action::Verify), false)
        }
        Command::Destroy(a) => {
            actions::run_lifecycle(a, lifecycle::Command::Action(Action::Destroy), false)
        }
        Command::Test(t) => {
            actions::run_lifecycle(t.common, lifecycle::Command::Test(t.destroy), true)
        }
        Command::Exec(e) => {
            let args = ActionArgs {
                instances: e.instances,
                concurrency: None,
                parallel: false,
                fail_fast: false,
                log_level: e.log_level,
                test_base_path: None,
            };
            actions::run_lifecycle(args, lifecycle::Command::Exec(e.command), false)
        }
        Command::Login(l) => actions::login(l),
    }
}
