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
#[command(name = "kitchen-driver", version = crate::VERSION, after_help = EXAMPLES_MAIN)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES_MAIN: &str = "Examples:
  kitchen-driver list                          instances and their last action
  kitchen-driver test -c                       test every instance, all at once
  kitchen-driver test -c --junit reports/junit.xml
  kitchen-driver completions bash > ~/.local/share/bash-completion/completions/kitchen-driver";

const EXAMPLES_LIST: &str = "Examples:
  kitchen-driver list
  kitchen-driver list default --json
  kitchen-driver list 'web-.*' --bare";

const EXAMPLES_DIAGNOSE: &str = "Examples:
  kitchen-driver diagnose default-busybox
  kitchen-driver diagnose all --json";

const EXAMPLES_CREATE: &str = "Examples:
  kitchen-driver create default-busybox
  kitchen-driver create all -c -l debug";

const EXAMPLES_CONVERGE: &str = "Examples:
  kitchen-driver converge default-busybox
  kitchen-driver converge 'web-.*' -c 2 --failure-output final";

const EXAMPLES_SETUP: &str = "Examples:
  kitchen-driver setup default-busybox";

const EXAMPLES_VERIFY: &str = "Examples:
  kitchen-driver verify default-busybox
  kitchen-driver verify -c --junit reports/junit.xml
  kitchen-driver verify -c --format json > events.jsonl";

const EXAMPLES_DESTROY: &str = "Examples:
  kitchen-driver destroy
  kitchen-driver destroy default-busybox";

const EXAMPLES_TEST: &str = "Examples:
  kitchen-driver test                           every instance, one at a time
  kitchen-driver test -c 4 --fail-fast          four at once; stop starting steps after a failure
  kitchen-driver test default --destroy never   keep the instance to inspect it
  kitchen-driver test -c --junit reports/junit.xml --failure-output final
  kitchen-driver test -c --summary-md summary.md --color never";

const EXAMPLES_LOGIN: &str = "Examples:
  kitchen-driver login default-busybox
  echo 'cat /etc/os-release' | kitchen-driver login default-busybox";

const EXAMPLES_EXEC: &str = "Examples:
  kitchen-driver exec default-busybox -c 'uname -a'
  kitchen-driver exec all -c 'cat /etc/hostname'";

const EXAMPLES_COMPLETIONS: &str = "Examples:
  kitchen-driver completions bash > ~/.local/share/bash-completion/completions/kitchen-driver
  kitchen-driver completions zsh > ~/.zfunc/_kitchen-driver
  kitchen-driver completions fish > ~/.config/fish/completions/kitchen-driver.fish";

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// List instances and their last action (`kitchen list`).
    #[command(after_help = EXAMPLES_LIST)]
    List(ListArgs),
    /// Print the fully merged configuration of each instance (`kitchen diagnose`).
    #[command(after_help = EXAMPLES_DIAGNOSE)]
    Diagnose(DiagnoseArgs),
    /// Create instances (`kitchen create`).
    #[command(after_help = EXAMPLES_CREATE)]
    Create(ActionArgs),
    /// Create as needed, then provision (`kitchen converge`).
    #[command(after_help = EXAMPLES_CONVERGE)]
    Converge(ActionArgs),
    /// Create and converge as needed, then the (empty) setup step (`kitchen setup`).
    #[command(after_help = EXAMPLES_SETUP)]
    Setup(ActionArgs),
    /// Create, converge and set up as needed, then verify (`kitchen verify`).
    #[command(after_help = EXAMPLES_VERIFY)]
    Verify(ActionArgs),
    /// Destroy instances and delete their state (`kitchen destroy`).
    #[command(after_help = EXAMPLES_DESTROY)]
    Destroy(ActionArgs),
    /// Destroy, create..verify, then destroy per --destroy (`kitchen test`).
    #[command(after_help = EXAMPLES_TEST)]
    Test(TestArgs),
    /// Open an interactive shell in one instance (`kitchen login`).
    #[command(after_help = EXAMPLES_LOGIN)]
    Login(LoginArgs),
    /// Run a command in instances (`kitchen exec -c CMD`).
    #[command(after_help = EXAMPLES_EXEC)]
    Exec(ExecArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions(CompletionsArgs),
}

/// `completions bash|zsh|fish`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum CompletionShell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// The completion script for `shell`.
pub fn completion_script(shell: CompletionShell) -> String {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kitchen-driver", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    if shell == Shell::Bash {
        // clap_complete 4.6 spells a hyphenated program's subcommand states two ways in bash
        // (`kitchen__driver__subcmd__test` in the dispatch loop, `kitchen__subcmd__driver__...`
        // in the case arms), so no subcommand's options ever complete
        // (https://github.com/clap-rs/clap/issues/6421). Use the loop's spelling throughout.
        return script.replace("kitchen__subcmd__driver", "kitchen__driver");
    }
    script
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
        Command::Completions(c) => {
            let mut out = std::io::stdout().lock();
            match out
                .write_all(completion_script(c.shell).as_bytes())
                .and_then(|()| out.flush())
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("kitchen-driver: cannot write the completion script: {e}");
                    20
                }
            }
        }
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
