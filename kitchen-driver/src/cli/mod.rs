//! The command line: test-kitchen's verbs, flags and exit codes.
//!
//! Exit codes as test-kitchen: 0 success; 1 usage errors and "no instances matched"; 20 "N
//! actions failed" and other errors (such as an unreadable kitchen.yml); 130 after Ctrl-C.
//! The table is [`exit`]; every failure is printed by [`exit::report_fatal`].

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use crate::action::Action;
use crate::config::{self, LoadOptions, Project};
use crate::error::{Error, Result};
use crate::lifecycle;

mod actions;
mod cache;
mod diagnose;
pub mod exit;
mod list;
mod orphans;
pub mod plugin_protocol;

pub use actions::{ActionArgs, ExecArgs, LoginArgs, TestArgs};
pub use cache::{CacheArgs, CacheCommand, ClearArgs, render_list as render_cache_list};
pub use orphans::DestroyArgs;

pub use diagnose::render_diagnose;
pub use list::{ListRow, list_rows, render_table};

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
  kitchen-driver destroy default-busybox
  kitchen-driver destroy --orphans              containers and built images no state file knows";

const EXAMPLES_RESET: &str = "Examples:
  kitchen-driver reset default-debian           back to right after create, then converge again
  kitchen-driver reset all -c && kitchen-driver converge all -c";

const EXAMPLES_CACHE: &str = "Examples:
  kitchen-driver test --converge-cache          publish after converge, start from it next time
  kitchen-driver cache list
  kitchen-driver cache clear --older-than 7";

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
    /// Destroy instances and delete their state (`kitchen destroy`); with `--orphans`, remove
    /// what this checkout created that no state file knows.
    #[command(after_help = EXAMPLES_DESTROY)]
    Destroy(DestroyArgs),
    /// Return created instances to their state right after create: LXD restores the
    /// `kitchen-pristine` snapshot, Docker recreates the container from its image. The last
    /// action goes back to `create` (no test-kitchen equivalent).
    #[command(after_help = EXAMPLES_RESET)]
    Reset(ActionArgs),
    /// Show or remove this checkout's converge cache images (`--converge-cache`, driver key
    /// `converge_cache: true`).
    #[command(after_help = EXAMPLES_CACHE)]
    Cache(CacheArgs),
    /// Destroy, create..verify, then destroy per --destroy (`kitchen test`).
    #[command(after_help = EXAMPLES_TEST)]
    Test(TestArgs),
    /// Open an interactive shell in one instance (`kitchen login`).
    #[command(after_help = EXAMPLES_LOGIN)]
    Login(LoginArgs),
    /// Run a command in instances (`kitchen exec -c CMD`). It takes the instance's lock when
    /// it is free; while another process holds it (a converge), exec runs anyway without it,
    /// says so, and logs to kitchen.log only.
    #[command(after_help = EXAMPLES_EXEC)]
    Exec(ExecArgs),
    /// The machine interface for test-kitchen plugins (JSON in, JSON lines out; see
    /// PLUGIN-PROTOCOL.md).
    Plugin(plugin_protocol::PluginArgs),
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
        Ok(cli) => run(cli).unwrap_or_else(|e| exit::report_fatal(&e)),
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            code
        }
    }
}

/// Runs the parsed command line and returns the exit code of a command that succeeded: 0, or
/// for `login` the shell's own exit code.
///
/// # Errors
/// Whatever failed; [`Error::exit_code`] maps it to the process exit code and
/// [`exit::report_fatal`] prints it.
pub fn run(cli: Cli) -> Result<i32> {
    let dir = std::env::current_dir().map_err(|source| Error::Startup {
        action: "determine the current directory",
        source,
    })?;
    let opts = LoadOptions::from_process(dir);
    let action = |a, c| actions::run_lifecycle(&opts, a, c).map(|()| exit::SUCCESS);
    match cli.command {
        Command::List(args) => {
            let code = report(&opts, &args.instances, |p, sel, out| {
                let mut out = out;
                list::run(p, sel, &args, &mut out)
            })?;
            // After the table, for people (on stderr); `--bare` and `--json` are for scripts.
            if !args.bare
                && !args.json
                && let Ok(project) = config::load(&opts)
                && let Some(note) = orphans::list_note(&project)
            {
                eprintln!("{note}");
            }
            Ok(code)
        }
        Command::Diagnose(args) => report(&opts, &args.instances, |p, sel, out| {
            let text = render_diagnose(p, sel, args.json)?;
            out.write_all(text.as_bytes()).map_err(output_error)
        }),
        Command::Create(a) => action(a, lifecycle::Command::Action(Action::Create)),
        Command::Converge(a) => action(a, lifecycle::Command::Action(Action::Converge)),
        Command::Setup(a) => action(a, lifecycle::Command::Action(Action::Setup)),
        Command::Verify(a) => action(a, lifecycle::Command::Action(Action::Verify)),
        Command::Destroy(d) if d.orphans => orphans::destroy(&opts),
        Command::Destroy(d) => action(d.common, lifecycle::Command::Action(Action::Destroy)),
        Command::Reset(a) => action(a, lifecycle::Command::Reset),
        Command::Cache(c) => cache::run(&opts, c),
        Command::Test(t) => action(t.common, lifecycle::Command::Test(t.destroy)),
        Command::Exec(e) => {
            let args = ActionArgs::for_instances(e.instances, e.log_level);
            action(args, lifecycle::Command::Exec(e.command))
        }
        Command::Login(l) => actions::login(&opts, l),
        Command::Completions(c) => {
            let mut out = std::io::stdout().lock();
            out.write_all(completion_script(c.shell).as_bytes())
                .and_then(|()| out.flush())
                .map_err(output_error)?;
            Ok(exit::SUCCESS)
        }
        // The protocol answers its own errors as JSON lines and picks the exit code.
        Command::Plugin(p) => Ok(plugin_protocol::main(p)),
    }
}

/// Runs a reporting command (list, diagnose) on stdout.
fn report(
    opts: &LoadOptions,
    instances: &[String],
    f: impl FnOnce(&Project, &[String], &mut dyn Write) -> Result<()>,
) -> Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = load_and_select(opts, instances).and_then(|(p, sel)| f(&p, &sel, &mut out));
    // Whatever was printed goes out before the error.
    let _ = out.flush();
    result.map(|()| exit::SUCCESS)
}

/// [`Error::Report`] for a failed write to stdout.
fn output_error(e: std::io::Error) -> Error {
    Error::Report {
        what: "output".into(),
        source: Box::new(e),
    }
}

fn load_and_select(opts: &LoadOptions, args: &[String]) -> Result<(Project, Vec<String>)> {
    let project = config::load(opts)?;
    let names = project
        .select(args)?
        .into_iter()
        .map(|i| i.name.clone())
        .collect();
    Ok((project, names))
}
