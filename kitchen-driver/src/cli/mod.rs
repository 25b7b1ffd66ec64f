//! The command line: test-kitchen's verbs, flags and exit codes.
//!
//! Exit codes as test-kitchen: 0 success; 1 usage errors and "no instances matched"; 10 an
//! instance failure; 20 "N actions failed" and other errors (such as an unreadable kitchen.yml).

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, LoadOptions, Project};
use crate::lifecycle::{self, Action};

mod actions;
mod diagnose;
mod list;

pub use actions::{
    ActionArgs, EXIT_ACTIONS_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ExecArgs, LoginArgs, TestArgs,
};

pub use diagnose::render_diagnose;
pub use list::{ListRow, list_rows, render_table, state_label};

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
    /// Print JSON (`--bare` wins when both are given, as in test-kitchen).
    #[arg(short, long)]
    pub json: bool,
}

/// `diagnose [REGEX...|all] [--json]`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// `all`, an exact instance name, or a regular expression.
    pub instances: Vec<String>,
    /// Print JSON instead of YAML.
    #[arg(long)]
    pub json: bool,
}

/// Parses `args` (the program name first) and runs the command, returning the process exit
/// code. Usage errors exit 1 as in test-kitchen (clap's default would be 2); `--help` and
/// `--version` print and exit 0.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => run(cli),
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            code
        }
    }
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kitchen-driver: cannot determine the current directory: {e}");
            return 20;
        }
    };
    let opts = LoadOptions::from_process(dir);
    let action = |a, c| actions::run_lifecycle(&opts, a, c);
    match cli.command {
        Command::List(args) => report(&opts, &args.instances, |p, sel, out| {
            let mut out = out;
            list::run(p, sel, &args, &mut out)
        }),
        Command::Diagnose(args) => report(&opts, &args.instances, |p, sel, out| {
            let text = render_diagnose(p, sel, args.json)?;
            out.write_all(text.as_bytes()).map_err(CliError::from)
        }),
        Command::Create(a) => action(a, lifecycle::Command::Action(Action::Create)),
        Command::Converge(a) => action(a, lifecycle::Command::Action(Action::Converge)),
        Command::Setup(a) => action(a, lifecycle::Command::Action(Action::Setup)),
        Command::Verify(a) => action(a, lifecycle::Command::Action(Action::Verify)),
        Command::Destroy(a) => action(a, lifecycle::Command::Action(Action::Destroy)),
        Command::Test(t) => action(t.common, lifecycle::Command::Test(t.destroy)),
        Command::Exec(e) => {
            let args = ActionArgs::for_instances(e.instances, e.log_level);
            action(args, lifecycle::Command::Exec(e.command))
        }
        Command::Login(l) => actions::login(&opts, l),
    }
}

/// Runs a reporting command (list, diagnose) on stdout and maps its error to an exit code.
fn report(
    opts: &LoadOptions,
    instances: &[String],
    f: impl FnOnce(&Project, &[String], &mut dyn Write) -> Result<(), CliError>,
) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match load_and_select(opts, instances).and_then(|(p, sel)| f(&p, &sel, &mut out)) {
        Ok(()) => 0,
        Err(e) => {
            let _ = out.flush();
            eprintln!(">>>>>> {e}");
            e.exit_code()
        }
    }
}

/// Errors the list and diagnose commands report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Loading the project or selecting instances failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code (test-kitchen's).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(e) => e.exit_code(),
            CliError::Io(_) => 20,
        }
    }
}

fn load_and_select(
    opts: &LoadOptions,
    args: &[String],
) -> Result<(Project, Vec<String>), CliError> {
    let project = config::load(opts)?;
    let names = project
        .select(args)?
        .into_iter()
        .map(|i| i.name.clone())
        .collect();
    Ok((project, names))
}
